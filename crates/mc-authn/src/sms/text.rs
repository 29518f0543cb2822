//! The words of the SMS. What the service provider asked to show (binding message,
//! context) is cut to a configured length so that an over-long request still makes an SMS
//! of a few parts; the cut marker is ASCII, so a GSM 03.38 text stays in that alphabet.

use mc_store::SmsMode;

use crate::authenticator::Challenge;

/// Longest client name and request description, in characters.
pub const MAX_CLIENT_CHARS: usize = 30;

/// `s` cut to `max` characters, marked with `...` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let kept: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", kept.trim_end())
}

/// The SMS for a challenge. `code` and `link` are present as the mode asks.
pub fn compose(
    c: &Challenge,
    mode: SmsMode,
    code: Option<&str>,
    link: Option<&str>,
    max_detail_chars: usize,
) -> String {
    let what = match (&c.binding_message, &c.context) {
        (Some(b), Some(ctx)) => format!("{b} {ctx}"),
        (Some(b), None) => b.clone(),
        (None, Some(ctx)) => ctx.clone(),
        (None, None) => "log in".to_owned(),
    };
    let mut text = format!(
        "{}: {}",
        clip(&c.client_name, MAX_CLIENT_CHARS),
        clip(what.trim(), max_detail_chars)
    );
    if let (true, Some(code)) = (mode.has_otp(), code) {
        text.push_str(&format!("\nCode: {code}. Never share it."));
    }
    if let (true, Some(link)) = (mode.has_url(), link) {
        text.push_str(&format!("\nConfirm or reject: {link}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_core::acr::Loa;

    fn challenge(context: Option<String>) -> Challenge {
        Challenge {
            session_id: "s".into(),
            subscriber_id: "u".into(),
            loa: Loa::Two,
            client_name: "Shop".into(),
            context,
            binding_message: None,
            expires_at: 0,
        }
    }

    #[test]
    fn long_context_is_clipped() {
        let t = compose(
            &challenge(Some("x".repeat(500))),
            SmsMode::OtpUrl,
            Some("123456"),
            Some("https://gw/l/abc"),
            60,
        );
        assert!(t.starts_with("Shop: xxx"));
        assert!(t.contains("...\nCode: 123456"));
        assert!(t.ends_with("https://gw/l/abc"));
        assert!(t.chars().count() < 160);
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("ééééé", 5), "ééééé");
        assert_eq!(clip("éééééé", 5), "éé...");
    }
}
