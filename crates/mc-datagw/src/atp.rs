//! Account-takeover protection (`mc_atp`, digest §8.4, CAMARA `MC_ATP.yaml`): a service
//! provider's back end, holding a client-credentials token, names a subscriber with
//! `User-ID-Type` / `User-ID` headers and learns whether the SIM changed recently, whether
//! the phone is reported lost or stolen, and the account state — from provisioning data.
//!
//! The answer uses the CAMARA names and string values (`"true"`/`"false"`), including
//! its spelling `isUncontidionalCallDivertActive`, because that is what clients parse.

use serde_json::{Map, Value, json};

use crate::attributes::{Attributes, date_of};

/// How the subscriber is named (`User-ID-Type`, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserIdType {
    /// Digits, optionally with `+`.
    Msisdn,
    /// The number encrypted with the operator's public key (as in `ENCR_MSISDN:`).
    EncrMsisdn,
    /// The client's own PCR for the subscriber.
    Pcr,
}

impl UserIdType {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "msisdn" => Some(UserIdType::Msisdn),
            "encr_msisdn" | "encrypted_msisdn" => Some(UserIdType::EncrMsisdn),
            "pcr" => Some(UserIdType::Pcr),
            _ => None,
        }
    }
}

/// How `simChange` is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimChange {
    /// `"true"` when the SIM changed within this many hours, else `"false"`.
    Within { hours: u32 },
    /// The date of the last change (`YYYY-MM-DD`).
    Date,
}

/// CAMARA bounds of `maxAge` (hours).
pub const MAX_AGE_HOURS: std::ops::RangeInclusive<u32> = 1..=2400;

/// The provisioning facts of one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtpFacts {
    /// Last MSISDN ↔ SIM pairing change (Unix seconds), if one was recorded.
    pub sim_changed_at: Option<i64>,
    /// When the subscriber was provisioned: the first pairing, the date answered when no
    /// change was recorded.
    pub provisioned_at: i64,
    pub device_changed_at: Option<i64>,
    pub lost_stolen: bool,
    /// `active` or `inactive`.
    pub account_state: String,
    pub call_divert_active: Option<bool>,
}

impl AtpFacts {
    /// From the attribute document and the subscriber record's state: the provisioned
    /// flags win; without them a suspended subscriber (the stolen-phone case) is lost or
    /// stolen and any non-active one is `inactive`.
    pub fn from_attributes(
        a: &Attributes,
        status_active: bool,
        suspended: bool,
        created_at: i64,
    ) -> Self {
        AtpFacts {
            sim_changed_at: a.timestamp("sim_changed_at"),
            provisioned_at: created_at,
            device_changed_at: a.timestamp("device_changed_at"),
            lost_stolen: a.flag("lost_stolen").unwrap_or(suspended),
            account_state: a
                .text("account_state")
                .map(str::to_owned)
                .unwrap_or_else(|| if status_active { "active" } else { "inactive" }.to_owned()),
            call_divert_active: a.flag("call_divert_active"),
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The ATP answer at `now` (Unix seconds).
pub fn answer(facts: &AtpFacts, sim_change: SimChange, now: i64) -> Map<String, Value> {
    let mut out = Map::new();
    let sim = match sim_change {
        SimChange::Within { hours } => {
            let since = now - i64::from(hours) * 3600;
            json!(yes_no(
                facts.sim_changed_at.is_some_and(|t| t >= since && t <= now)
            ))
        }
        SimChange::Date => {
            let t = facts.sim_changed_at.unwrap_or(facts.provisioned_at);
            json!(date_of(t).unwrap_or_default())
        }
    };
    out.insert("simChange".into(), sim);
    if let Some(d) = facts.device_changed_at.and_then(date_of) {
        out.insert("deviceChange".into(), json!(d));
    }
    out.insert("isLostStolen".into(), json!(yes_no(facts.lost_stolen)));
    out.insert("accountState".into(), json!(facts.account_state));
    if let Some(c) = facts.call_divert_active {
        out.insert("isUncontidionalCallDivertActive".into(), json!(yes_no(c)));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_795_168_800;

    fn facts(changed: Option<i64>) -> AtpFacts {
        AtpFacts {
            sim_changed_at: changed,
            provisioned_at: NOW - 400 * DAY,
            device_changed_at: None,
            lost_stolen: false,
            account_state: "active".into(),
            call_divert_active: None,
        }
    }

    #[test]
    fn sim_change_within_a_window() {
        let w = SimChange::Within { hours: 24 };
        assert_eq!(
            answer(&facts(Some(NOW - 3600)), w, NOW)["simChange"],
            "true"
        );
        assert_eq!(
            answer(&facts(Some(NOW - 2 * DAY)), w, NOW)["simChange"],
            "false"
        );
        assert_eq!(answer(&facts(None), w, NOW)["simChange"], "false");
        let wide = SimChange::Within { hours: 72 };
        assert_eq!(
            answer(&facts(Some(NOW - 2 * DAY)), wide, NOW)["simChange"],
            "true"
        );
    }

    #[test]
    fn sim_change_as_a_date() {
        let a = answer(&facts(Some(1_594_598_400)), SimChange::Date, NOW);
        assert_eq!(a["simChange"], "2020-07-13");
        let never = answer(&facts(None), SimChange::Date, NOW);
        assert_eq!(never["simChange"], date_of(NOW - 400 * DAY).unwrap());
    }

    #[test]
    fn provisioned_flags_win_over_the_subscriber_status() {
        let a = Attributes::from_json(&json!({"lost_stolen": true, "call_divert_active": false}))
            .unwrap();
        let f = AtpFacts::from_attributes(&a, true, false, 0);
        let ans = answer(&f, SimChange::Within { hours: 1 }, NOW);
        assert_eq!(ans["isLostStolen"], "true");
        assert_eq!(ans["accountState"], "active");
        assert_eq!(ans["isUncontidionalCallDivertActive"], "false");
        let suspended = AtpFacts::from_attributes(&Attributes::default(), false, true, 0);
        let ans = answer(&suspended, SimChange::Within { hours: 1 }, NOW);
        assert_eq!(ans["isLostStolen"], "true");
        assert_eq!(ans["accountState"], "inactive");
        assert!(ans.get("isUncontidionalCallDivertActive").is_none());
    }

    #[test]
    fn user_id_types() {
        assert_eq!(UserIdType::parse("MSISDN"), Some(UserIdType::Msisdn));
        assert_eq!(
            UserIdType::parse("encr_msisdn"),
            Some(UserIdType::EncrMsisdn)
        );
        assert_eq!(UserIdType::parse("PCR"), Some(UserIdType::Pcr));
        assert_eq!(UserIdType::parse("imsi"), None);
    }
}
