//! Mobile Connect version strings (digest §1.1).

/// A Mobile Connect profile version as sent in the `version` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McVersion {
    V1_1,
    V1_2,
    V2_0,
    DiR2V2_3,
    DiV3_0,
    SiR2V1_0,
    SiV2_0,
}

impl McVersion {
    /// Every device-initiated and server-initiated version we speak, in metadata order.
    pub const ALL: [McVersion; 7] = [
        McVersion::V1_1,
        McVersion::V1_2,
        McVersion::V2_0,
        McVersion::DiR2V2_3,
        McVersion::DiV3_0,
        McVersion::SiR2V1_0,
        McVersion::SiV2_0,
    ];

    /// Parses a `version` value. Accepts the old Java SDK typo `mc_v2_0` for `mc_v2.0`
    /// (digest §1.1: `discovery/Version.java`).
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "mc_v1.1" => McVersion::V1_1,
            "mc_v1.2" => McVersion::V1_2,
            "mc_v2.0" | "mc_v2_0" => McVersion::V2_0,
            "mc_di_r2_v2.3" => McVersion::DiR2V2_3,
            "mc_di_v3.0" => McVersion::DiV3_0,
            "mc_si_r2_v1.0" => McVersion::SiR2V1_0,
            "mc_si_v2.0" => McVersion::SiV2_0,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            McVersion::V1_1 => "mc_v1.1",
            McVersion::V1_2 => "mc_v1.2",
            McVersion::V2_0 => "mc_v2.0",
            McVersion::DiR2V2_3 => "mc_di_r2_v2.3",
            McVersion::DiV3_0 => "mc_di_v3.0",
            McVersion::SiR2V1_0 => "mc_si_r2_v1.0",
            McVersion::SiV2_0 => "mc_si_v2.0",
        }
    }

    /// Server-initiated versions are only valid inside SI request objects.
    pub fn is_server_initiated(self) -> bool {
        matches!(self, McVersion::SiR2V1_0 | McVersion::SiV2_0)
    }

    /// From `mc_di_r2_v2.3` on, `at_hash`, `acr`, `amr` and `hashed_login_hint` are
    /// mandatory in the id_token (digest §6.1). We always send them; this says whether an
    /// RP may rely on it.
    pub fn requires_full_id_token(self) -> bool {
        matches!(self, McVersion::DiR2V2_3 | McVersion::DiV3_0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_round_trips() {
        for v in McVersion::ALL {
            assert_eq!(McVersion::parse(v.as_str()), Some(v));
        }
    }

    #[test]
    fn java_typo_is_mc_v2_0() {
        assert_eq!(McVersion::parse("mc_v2_0"), Some(McVersion::V2_0));
    }

    #[test]
    fn unknown_and_case_variants_are_refused() {
        for bad in ["", "mc_v3", "MC_V1.1", "mc_di_r2_v2.3 ", "mc_v1.1,mc_v2.0"] {
            assert_eq!(McVersion::parse(bad), None, "{bad}");
        }
    }
}
