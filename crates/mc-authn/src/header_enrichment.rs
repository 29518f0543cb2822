//! Header enrichment ("seamless" authentication, digest §10.1; seed 000 step 2): the
//! operator's network adds the subscriber's MSISDN as an HTTP header to requests from its
//! mobile data users, so a browser on that network is identified with no interaction.
//!
//! The header proves nothing by itself — anyone can send it — so it is believed only when
//! the request reaches the gateway from one of the operator's configured source networks:
//! the TCP peer address, or, when the peer is one of the operator's own reverse proxies, the
//! address that proxy reports in `X-Forwarded-For` (read from the right, skipping further
//! trusted proxies, so a client cannot smuggle a trusted address in front). It reaches LoA2
//! only (possession of the SIM's data session) and reports `amr` `SEAM_OK`; `prompt=no_seam`
//! turns it off for one request. The decision is pure (this module); the gateway applies it
//! at `/authorize` (`mc_gateway::enrichment`).

use std::net::IpAddr;

use async_trait::async_trait;
use mc_core::acr::Loa;
use mc_core::error::McError;
use mc_core::msisdn::Msisdn;
use mc_store::SubscriberRecord;

use crate::authenticator::{Authenticator, Challenge, Eligibility};

/// The configuration name and the capability-free authenticator's `amr`.
pub const NAME: &str = "header_enrichment";
pub const AMR: &str = "SEAM_OK";

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address (a host route).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net, prefix })
    }

    /// Whether `ip` is inside (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// A list of networks.
#[derive(Debug, Clone, Default)]
pub struct Networks(Vec<Cidr>);

impl Networks {
    /// Parses every entry; the first invalid one is the error.
    pub fn parse(list: &[String]) -> Result<Networks, String> {
        list.iter()
            .map(|s| Cidr::parse(s).ok_or_else(|| format!("not a CIDR network: {s:?}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Networks)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

/// Who may enrich: the operator's source networks and its reverse proxies.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub sources: Networks,
    pub proxies: Networks,
}

/// What the enrichment header told us about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrichment {
    /// No header: an ordinary request.
    Absent,
    /// The header from a trusted source, naming this number.
    Identified(Msisdn),
    /// The header from a source that may not set it (ignored; `masked` is for the log).
    Untrusted { client: IpAddr, masked: String },
    /// The header from a trusted source, but not a number.
    Unreadable,
}

impl Trust {
    /// The address the request comes from: the TCP peer, or — when the peer is a trusted
    /// proxy — the rightmost `X-Forwarded-For` entry that is not a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.proxies.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.unwrap_or_default().rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                // Garbage in the chain: stop at the last address we could vouch for.
                return client;
            };
            client = ip;
            if !self.proxies.contains(ip) {
                break;
            }
        }
        client
    }

    /// Judges one request: `peer` is its TCP peer (`None` when unknown: nothing is
    /// trusted), `header` the enrichment header's value.
    pub fn judge(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: Option<&str>,
        header: Option<&str>,
    ) -> Enrichment {
        let Some(value) = header else {
            return Enrichment::Absent;
        };
        let number = Msisdn::parse_typed(value).or_else(|| Msisdn::parse(value));
        let client = peer.map(|p| self.client_address(p, forwarded_for));
        match (client, number) {
            (Some(ip), Some(m)) if self.sources.contains(ip) => Enrichment::Identified(m),
            (Some(ip), None) if self.sources.contains(ip) => Enrichment::Unreadable,
            (client, number) => Enrichment::Untrusted {
                client: client.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                masked: number.map(|m| m.masked()).unwrap_or_default(),
            },
        }
    }
}

/// The seamless authenticator as the router sees it: it names `SEAM_OK` for metadata and
/// explains itself in the chain walk, where it is always skipped — it does not reach the
/// phone; the gateway applies it before the chain, at `/authorize`, where the request's
/// network is known.
pub struct HeaderEnrichment;

#[async_trait]
impl Authenticator for HeaderEnrichment {
    fn name(&self) -> &'static str {
        NAME
    }

    fn amr(&self, _loa: Loa) -> &'static str {
        AMR
    }

    fn amr_values(&self) -> &'static [&'static str] {
        &[AMR]
    }

    fn max_loa(&self) -> Loa {
        Loa::Two
    }

    fn eligibility(&self, _s: &SubscriberRecord, _loa: Loa) -> Eligibility {
        Eligibility::Skip("seamless: applied at /authorize from the operator's network only")
    }

    async fn start(&self, _challenge: &Challenge) -> Result<(), McError> {
        Err(McError::LoaUnavailable)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trust(sources: &[&str], proxies: &[&str]) -> Trust {
        let list = |l: &[&str]| {
            Networks::parse(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        Trust {
            sources: list(sources),
            proxies: list(proxies),
        }
    }

    #[test]
    fn cidrs_match_by_prefix_and_reject_nonsense() {
        let c = Cidr::parse("10.20.0.0/16").unwrap();
        assert!(c.contains(ip("10.20.255.1")));
        assert!(!c.contains(ip("10.21.0.1")));
        assert!(c.contains(ip("::ffff:10.20.1.1")), "IPv4-mapped IPv6");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("192.0.2.1")));
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
        assert!(
            !Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("10.20.0.1"))
        );
        assert_eq!(Cidr::parse("192.0.2.7"), Cidr::parse("192.0.2.7/32"));
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "::/129", "10.0.0.0/-1"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_source() {
        let t = trust(&["10.20.0.0/16"], &[]);
        assert_eq!(
            t.judge(Some(ip("10.20.1.2")), None, Some("447700900301")),
            Enrichment::Identified(Msisdn::parse("447700900301").unwrap())
        );
        assert!(matches!(
            t.judge(Some(ip("192.0.2.1")), None, Some("447700900301")),
            Enrichment::Untrusted { .. }
        ));
        assert!(matches!(
            t.judge(None, None, Some("447700900301")),
            Enrichment::Untrusted { .. }
        ));
        assert_eq!(
            t.judge(Some(ip("10.20.1.2")), None, None),
            Enrichment::Absent
        );
        assert_eq!(
            t.judge(Some(ip("10.20.1.2")), None, Some("not a number")),
            Enrichment::Unreadable
        );
    }

    #[test]
    fn forwarded_for_is_read_only_behind_a_trusted_proxy_and_from_the_right() {
        let t = trust(&["10.20.0.0/16"], &["127.0.0.1/32", "172.16.0.0/12"]);
        // Behind our proxies: the rightmost address that is not one of them.
        assert_eq!(
            t.client_address(ip("127.0.0.1"), Some("10.20.3.4, 172.16.0.9")),
            ip("10.20.3.4")
        );
        // A client prepending a trusted address does not get it believed.
        assert_eq!(
            t.client_address(ip("127.0.0.1"), Some("10.20.3.4, 192.0.2.66")),
            ip("192.0.2.66")
        );
        // Not from a proxy: the header is the client's own claim and ignored.
        assert_eq!(
            t.client_address(ip("192.0.2.66"), Some("10.20.3.4")),
            ip("192.0.2.66")
        );
        assert_eq!(
            t.client_address(ip("127.0.0.1"), Some("junk")),
            ip("127.0.0.1")
        );
    }
}
