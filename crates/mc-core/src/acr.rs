//! Levels of assurance and the `acr_values` list (digest §4.4).

use std::fmt;

/// ISO/IEC 29115 level of assurance as used by Mobile Connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Loa {
    /// Possession of the SIM: the user taps OK.
    Two,
    /// Possession plus knowledge or biometrics: the user enters a PIN.
    Three,
}

impl Loa {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "2" => Some(Loa::Two),
            "3" => Some(Loa::Three),
            _ => None,
        }
    }

    /// The `acr` claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Loa::Two => "2",
            Loa::Three => "3",
        }
    }
}

impl fmt::Display for Loa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The requested levels. Policy (docs/decisions.md, "acr_values lists"): the first value
/// is the target; a lower value listed after it is an accepted fallback when the target
/// cannot be reached for this subscriber; a higher value listed after a lower target is
/// ignored (never upgrade silently: the RP asked for the lower level first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcrValues {
    pub target: Loa,
    pub fallback: Option<Loa>,
}

impl AcrValues {
    /// Parses `"2"`, `"3"`, `"3 2"`, `"2 3"`. Unknown values (e.g. `"4"`, since LoA4 signing is
    /// not offered) are skipped as long as one supported value remains.
    pub fn parse(raw: &str) -> Option<Self> {
        let levels: Vec<Loa> = raw.split(' ').filter_map(Loa::parse).collect();
        if raw.split(' ').filter(|v| !v.is_empty()).count() > 4 {
            return None;
        }
        let target = *levels.first()?;
        let fallback = levels.iter().copied().find(|l| *l < target);
        Some(AcrValues { target, fallback })
    }

    /// The levels to try, strongest acceptable first.
    pub fn acceptable(&self) -> impl Iterator<Item = Loa> {
        std::iter::once(self.target).chain(self.fallback)
    }

    /// The wire form, stored with a pending request.
    pub fn to_wire(&self) -> String {
        match self.fallback {
            Some(f) => format!("{} {}", self.target, f),
            None => self.target.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values() {
        assert_eq!(
            AcrValues::parse("2"),
            Some(AcrValues {
                target: Loa::Two,
                fallback: None
            })
        );
        assert_eq!(
            AcrValues::parse("3"),
            Some(AcrValues {
                target: Loa::Three,
                fallback: None
            })
        );
    }

    #[test]
    fn three_two_targets_three_with_fallback_two() {
        let a = AcrValues::parse("3 2").unwrap();
        assert_eq!(a.target, Loa::Three);
        assert_eq!(a.fallback, Some(Loa::Two));
        assert_eq!(
            a.acceptable().collect::<Vec<_>>(),
            vec![Loa::Three, Loa::Two]
        );
        assert_eq!(a.to_wire(), "3 2");
    }

    #[test]
    fn two_three_targets_two_without_upgrade() {
        let a = AcrValues::parse("2 3").unwrap();
        assert_eq!(
            a,
            AcrValues {
                target: Loa::Two,
                fallback: None
            }
        );
    }

    #[test]
    fn unsupported_values_are_skipped_but_one_must_remain() {
        assert_eq!(AcrValues::parse("4 3").unwrap().target, Loa::Three);
        for bad in ["", "4", "loa-2", "1", "two", "2 2 2 2 2"] {
            assert_eq!(AcrValues::parse(bad), None, "{bad}");
        }
    }
}
