//! Mobile-data IP ranges (CIDR → operator) for `X-Source-IP` (digest §2.2).

use std::net::IpAddr;

/// A parsed CIDR block, its address already masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: u128,
    prefix: u8,
    v6: bool,
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x::/n` (a bare address is a /32 or /128). Host bits must be
    /// zero, so one block has one spelling.
    pub fn parse(raw: &str) -> Option<Cidr> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw, None),
        };
        let ip: IpAddr = addr.trim().parse().ok()?;
        let (bits, v6, max) = to_bits(ip);
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok()?
            }
            Some(_) => return None,
            None => max,
        };
        if prefix > max {
            return None;
        }
        let c = Cidr {
            network: bits & mask(prefix, max),
            prefix,
            v6,
        };
        (c.network == bits).then_some(c)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (bits, v6, max) = to_bits(ip);
        v6 == self.v6 && bits & mask(self.prefix, max) == self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip: IpAddr = if self.v6 {
            IpAddr::V6(self.network.into())
        } else {
            // The network of a v4 block fits 32 bits by construction.
            IpAddr::V4(u32::try_from(self.network).unwrap_or(0).into())
        };
        write!(f, "{ip}/{}", self.prefix)
    }
}

fn to_bits(ip: IpAddr) -> (u128, bool, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), false, 32),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // ::ffff:a.b.c.d is the v4 address (dual-stack listeners report it so).
            Some(v4) => (u128::from(u32::from(v4)), false, 32),
            None => (u128::from(v6), true, 128),
        },
    }
}

fn mask(prefix: u8, max: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        let ones = (!0u128) << (128 - u32::from(prefix));
        ones >> (128 - u32::from(max))
    }
}

/// Parses the `X-Source-IP` header: the first address of a comma-separated list (the
/// `X-Forwarded-For` shape some proxies produce), optionally with a port.
pub fn parse_source_ip(raw: &str) -> Option<IpAddr> {
    let first = raw.split(',').next()?.trim();
    if let Ok(ip) = first.parse() {
        return Some(ip);
    }
    first.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

/// The operators' blocks, most specific first.
#[derive(Debug, Default)]
pub struct IpIndex {
    blocks: Vec<(Cidr, usize)>,
}

impl IpIndex {
    /// `entries`: (block, operator index).
    pub fn new(mut blocks: Vec<(Cidr, usize)>) -> IpIndex {
        blocks.sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix));
        IpIndex { blocks }
    }

    /// The operator of the most specific block holding `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Option<usize> {
        self.blocks
            .iter()
            .find(|(c, _)| c.contains(ip))
            .map(|(_, op)| *op)
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_v4_and_v6() {
        let c = Cidr::parse("10.64.0.0/10").unwrap();
        assert!(c.contains("10.100.1.2".parse().unwrap()));
        assert!(!c.contains("10.128.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.64.0.1".parse().unwrap()));
        assert_eq!(c.to_string(), "10.64.0.0/10");
        let v6 = Cidr::parse("2001:db8:1::/48").unwrap();
        assert!(v6.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8:2::1".parse().unwrap()));
        assert!(!v6.contains("10.64.0.1".parse().unwrap()));
        assert_eq!(
            Cidr::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn rejects_bad_blocks() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0/8",
            "example.com/8",
            "2001:db8::/129",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn most_specific_block_wins() {
        let ix = IpIndex::new(vec![
            (Cidr::parse("10.0.0.0/8").unwrap(), 0),
            (Cidr::parse("10.1.0.0/16").unwrap(), 1),
        ]);
        assert_eq!(ix.lookup("10.1.2.3".parse().unwrap()), Some(1));
        assert_eq!(ix.lookup("10.2.2.3".parse().unwrap()), Some(0));
        assert_eq!(ix.lookup("11.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn source_ip_header_forms() {
        let want: IpAddr = "203.0.113.9".parse().unwrap();
        for raw in ["203.0.113.9", " 203.0.113.9 , 10.0.0.1", "203.0.113.9:443"] {
            assert_eq!(parse_source_ip(raw), Some(want), "{raw}");
        }
        assert_eq!(
            parse_source_ip("[2001:db8::1]:443"),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(parse_source_ip("nope"), None);
    }
}
