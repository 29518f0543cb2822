//! SMS velocity limits: how many SMS one number, one service provider and one destination
//! prefix may receive per window. The prefix limit is the defence against SMS pumping
//! (traffic inflated towards premium ranges through a login form): a burst towards one
//! range is refused whichever numbers and service providers it uses.
//!
//! The counters live in the store (fixed windows), so every gateway node draws on the same
//! budget; a refused SMS counts nothing.

use mc_store::VelocityKey;

/// Limits per window; 0 disables a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VelocityLimits {
    pub window_secs: i64,
    pub per_msisdn: u32,
    pub per_client: u32,
    pub per_prefix: u32,
    /// Digits of the E.164 number (after `+`) that make its prefix.
    pub prefix_digits: usize,
}

impl Default for VelocityLimits {
    fn default() -> Self {
        VelocityLimits {
            window_secs: 3_600,
            per_msisdn: 5,
            per_client: 1_000,
            per_prefix: 200,
            prefix_digits: 6,
        }
    }
}

/// Which limit refused an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Msisdn,
    Client,
    Prefix,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Msisdn => "msisdn",
            Limit::Client => "client",
            Limit::Prefix => "prefix",
        }
    }
}

impl VelocityLimits {
    /// The start of the window `now` falls in.
    pub fn window_start(&self, now: i64) -> i64 {
        let w = self.window_secs.max(1);
        now - now.rem_euclid(w)
    }

    /// The counters an SMS to `msisdn` (E.164 with `+`) for `client_id` takes from, with
    /// the limit each stands for.
    pub fn keys(&self, msisdn: &str, client_id: &str) -> Vec<(Limit, VelocityKey)> {
        let digits = msisdn.trim_start_matches('+');
        let prefix: String = digits.chars().take(self.prefix_digits).collect();
        [
            (Limit::Msisdn, format!("msisdn:{digits}"), self.per_msisdn),
            (
                Limit::Client,
                format!("client:{client_id}"),
                self.per_client,
            ),
            (Limit::Prefix, format!("prefix:{prefix}"), self.per_prefix),
        ]
        .into_iter()
        .filter(|(_, _, limit)| *limit > 0)
        .map(|(which, key, limit)| (which, VelocityKey { key, limit }))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_windows() {
        let v = VelocityLimits {
            per_client: 0,
            ..VelocityLimits::default()
        };
        let keys = v.keys("+447700900123", "sp1");
        assert_eq!(keys.len(), 2, "a zero limit takes no counter");
        assert_eq!(keys[0].1.key, "msisdn:447700900123");
        assert_eq!(keys[1].1.key, "prefix:447700");
        assert_eq!(v.window_start(7_199), 3_600);
        assert_eq!(v.window_start(7_200), 7_200);
    }
}
