//! `mobileconnect admin keys …`: the key lifecycle (`mc_gateway::keys`) run directly on the
//! configured store. Running gateways pick a change up within `gateway.keys.refresh_secs`.

use std::path::PathBuf;

use clap::Subcommand;
use mc_gateway::keys::{KeyPolicy, KeyRing};
use mc_gateway::state::now;
use mc_store::DynStore;

use crate::settings::Settings;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Every stored key: kid, alg, use, state, whether the JWKS carries it, and its times
    /// (Unix seconds and UTC).
    List,
    /// Rotate now. Signing key: the published `next` key signs from now on if it has been
    /// published for `gateway.keys.publish_ahead_secs`, otherwise it is scheduled to start
    /// as soon as it has been; the old key stays published until its tokens have expired.
    Rotate {
        /// Skip publish-ahead: the new key signs at once (a compromised key). RPs that cached
        /// the JWKS fetch it again when they meet the unknown kid.
        #[arg(long)]
        immediate: bool,
        /// `sig` (default) or `enc` (the `ENCR_MSISDN` key: always immediate; the old key
        /// keeps decrypting for `gateway.keys.enc_retire_after_secs`).
        #[arg(long = "use", default_value = "sig", value_parser = ["sig", "enc"])]
        key_use: String,
    },
}

fn print(v: impl serde::Serialize) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// RFC 3339 (UTC) of a Unix time, for people reading the listing.
fn utc(t: Option<i64>) -> serde_json::Value {
    let Some(t) = t else {
        return serde_json::Value::Null;
    };
    // Days to a civil date (H. Hinnant's algorithm), proleptic Gregorian.
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    serde_json::Value::String(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}

pub async fn run(settings: &Settings, store: &DynStore, command: KeyCommand) -> Result<(), String> {
    match command {
        // Listing needs no key-encryption key: it shows no private part.
        KeyCommand::List => {
            let keys = store.list_keys().await.map_err(|e| e.to_string())?;
            let rows: Vec<serde_json::Value> = keys
                .iter()
                .rev()
                .map(|k| {
                    serde_json::json!({
                        "kid": k.kid,
                        "alg": k.alg,
                        "use": k.key_use,
                        "state": k.state.as_str(),
                        "published": k.key_use == "sig" || k.state == mc_store::KeyState::Active,
                        "created_at": k.created_at,
                        "created": utc(Some(k.created_at)),
                        "activates_at": k.activates_at,
                        "activates": utc(k.activates_at),
                        "deactivated_at": k.deactivated_at,
                        "deactivated": utc(k.deactivated_at),
                        "remove_at": k.remove_at,
                        "remove": utc(k.remove_at),
                    })
                })
                .collect();
            print(rows)
        }
        KeyCommand::Rotate { immediate, key_use } => {
            let kek_path = settings
                .keys
                .kek_file
                .clone()
                .unwrap_or_else(|| PathBuf::from("./data/kek.hex"));
            let kek = crate::run::configured_kek(&settings.keys, &kek_path, store).await?;
            let t = now();
            let ring = KeyRing::load_or_create(&**store, &kek, t)
                .await
                .map_err(|e| format!("keys: {e}"))?;
            let policy = KeyPolicy::from_config(&settings.gateway);
            let done = ring
                .rotate(&**store, &policy, &key_use, immediate, t)
                .await
                .map_err(|e| format!("keys: {e}"))?;
            print(done)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formats_unix_times() {
        assert_eq!(super::utc(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(Some(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(Some(1_795_000_000)), "2026-11-18T11:06:40Z");
        assert_eq!(super::utc(None), serde_json::Value::Null);
    }
}
