//! `Msisdn`: a subscriber's number in international format, digits only.

use std::fmt;

/// An MSISDN in E.164 form without the leading `+` (what every Mobile Connect SDK sends,
/// digest §4.3): 7 to 15 digits, no leading zero.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(String);

impl Msisdn {
    /// Parses `+447700900301` or `447700900301`; spaces, dashes and other formatting are refused
    /// so one number has exactly one spelling in the store.
    pub fn parse(raw: &str) -> Option<Self> {
        let digits = raw.strip_prefix('+').unwrap_or(raw);
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        ok.then(|| Msisdn(digits.to_owned()))
    }

    /// Parses a number as a person types it: spaces, dashes, dots and parentheses are
    /// dropped and a leading international `00` counts as `+`.
    pub fn parse_typed(raw: &str) -> Option<Self> {
        let kept: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let kept = kept
            .strip_prefix("00")
            .map(|r| format!("+{r}"))
            .unwrap_or(kept);
        Self::parse(&kept)
    }

    /// The digits, no `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `+` and the digits, as the OIDC `phone_number` claim wants it.
    pub fn e164(&self) -> String {
        format!("+{}", self.0)
    }

    /// The form used in logs: country-code-ish head and the last two digits only.
    pub fn masked(&self) -> String {
        let n = self.0.len();
        format!("{}{}{}", &self.0[..3], "*".repeat(n - 5), &self.0[n - 2..])
    }
}

/// Debug and Display both mask: an MSISDN never reaches a log line by accident.
impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_with_and_without_plus() {
        assert_eq!(
            Msisdn::parse("+447700900301"),
            Msisdn::parse("447700900301")
        );
        assert_eq!(
            Msisdn::parse("447700900301").unwrap().as_str(),
            "447700900301"
        );
    }

    #[test]
    fn rejects_garbage_short_long_and_leading_zero() {
        for bad in [
            "",
            "+",
            "44 7700",
            "12345",
            "1234567890123456",
            "0447700900301",
            "44770090030a",
        ] {
            assert!(Msisdn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn typed_numbers_are_normalised() {
        let want = Msisdn::parse("447700900301");
        for typed in ["+44 7700 900301", "0044-7700-900301", "+44 (7700) 900.301"] {
            assert_eq!(Msisdn::parse_typed(typed), want, "{typed}");
        }
        assert_eq!(
            Msisdn::parse_typed("07700 900301"),
            None,
            "national format is ambiguous"
        );
    }

    #[test]
    fn display_and_debug_mask_the_number() {
        let m = Msisdn::parse("447700900301").unwrap();
        assert_eq!(m.to_string(), "447*******01");
        assert!(!format!("{m:?}").contains("7700900"));
    }
}
