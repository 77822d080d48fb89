//! Per-IP and per-API-key rate limits (GCRA, `governor`), answered `429`
//! in the one error shape with `Retry-After`.
//!
//! The client IP is the connection's peer address (the server runs
//! `into_make_service_with_connect_info`). Only when that peer is one of
//! [`RateLimit::trusted_proxies`] is `X-Forwarded-For` read, from the
//! right: each trusted proxy appends the address it received the request
//! from, so the right-most hop that is not a trusted proxy is the client
//! (everything left of it was written by the client and can be forged).
//! An IPv6 client is limited by its /64 prefix, the block one host or
//! customer line usually gets ([`client_key`]). API keys are limited by a
//! hash of the key, never the key.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

/// A limit: a sustained rate per minute and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

/// The rate limits of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Per client IP, every route. Default 6 000/min, burst 200; `None`
    /// turns it off.
    pub per_ip: Option<Rate>,
    /// Per API key, the lead and dashboard APIs. Default 12 000/min, burst
    /// 400; `None` turns it off.
    pub per_key: Option<Rate>,
    /// The reverse proxies whose `X-Forwarded-For` is believed: when the
    /// connection comes from one of them, the client is the right-most
    /// `X-Forwarded-For` hop that is not one of them. Default empty: the
    /// header is ignored and the peer address is the client.
    pub trusted_proxies: Vec<IpRange>,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_ip: Some(Rate {
                per_minute: 6_000,
                burst: 200,
            }),
            per_key: Some(Rate {
                per_minute: 12_000,
                burst: 400,
            }),
            trusted_proxies: Vec::new(),
        }
    }
}

impl RateLimit {
    /// No limits.
    pub fn off() -> Self {
        Self {
            per_ip: None,
            per_key: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// An IP address or a CIDR range of them: `10.0.0.7`, `10.0.0.0/8`,
/// `::1`, `fd00::/8`. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.7`) are
/// read as the IPv4 address they carry, in ranges and in [`IpRange::contains`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    /// The first address of the range (host bits cleared).
    network: IpAddr,
    /// How many leading bits are fixed (32 or 128 for one address).
    prefix: u8,
}

/// A text that is no IP address or CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an IP address or CIDR range such as 10.0.0.1, 10.0.0.0/8 or fd00::/8")]
pub struct InvalidIpRange;

impl IpRange {
    /// The range of `addr`'s first `prefix` bits.
    ///
    /// # Errors
    ///
    /// [`InvalidIpRange`] when `prefix` is over 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, InvalidIpRange> {
        let addr = addr.to_canonical();
        let network = match addr {
            IpAddr::V4(v4) if prefix <= 32 => {
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask32(prefix)))
            }
            IpAddr::V6(v6) if prefix <= 128 => {
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(prefix)))
            }
            _ => return Err(InvalidIpRange),
        };
        Ok(Self { network, prefix })
    }

    /// Exactly one address.
    pub fn single(addr: IpAddr) -> Self {
        let addr = addr.to_canonical();
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            network: addr,
            prefix,
        }
    }

    /// The loopback ranges, `127.0.0.0/8` and `::1`: a proxy on the same
    /// machine.
    pub fn loopback() -> [Self; 2] {
        [
            Self {
                network: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            Self::single(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ]
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpRange {
    type Err = InvalidIpRange;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.split_once('/') {
            None => Ok(Self::single(text.parse().map_err(|_| InvalidIpRange)?)),
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| InvalidIpRange)?;
                if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InvalidIpRange);
                }
                let prefix: u8 = prefix.parse().map_err(|_| InvalidIpRange)?;
                // `::ffff:10.0.0.0/104` is `10.0.0.0/8`.
                let prefix = match addr {
                    IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                        prefix.checked_sub(96).ok_or(InvalidIpRange)?
                    }
                    _ => prefix,
                };
                Self::new(addr, prefix)
            }
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// What a client is limited by: its address (an IPv4-mapped IPv6 address
/// as the IPv4 address it carries), or for IPv6 its /64 prefix, since one
/// host usually holds a whole /64 and could otherwise take a fresh
/// address, and a fresh budget, for every request.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(64))),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` hop: an address, or an address with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:443`); `None` for anything else
/// (`unknown`, an obfuscated name, garbage).
fn hop(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))?;
    Some(ip.to_canonical())
}

/// The client's address: `peer` unless it is a trusted proxy; then the
/// right-most `X-Forwarded-For` hop (over every header line, in order) that
/// is not a trusted proxy. When a hop cannot be read, the last trusted
/// address stands (the client cannot choose its key with garbage); when
/// every hop is trusted, the left-most one is the client.
pub(crate) fn client_ip(peer: IpAddr, headers: &http::HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|line| line.as_bytes().rsplit(|b| *b == b','));
    for entry in hops {
        match hop(entry) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

fn quota(rate: Rate) -> Option<Quota> {
    let per_minute = NonZeroU32::new(rate.per_minute)?;
    let burst = NonZeroU32::new(rate.burst.max(1))?;
    Some(Quota::per_minute(per_minute).allow_burst(burst))
}

/// The limiters, shared by every request.
pub(crate) struct Limiters {
    checks: std::sync::atomic::AtomicU64,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_key: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    trusted_proxies: Vec<IpRange>,
}

impl Limiters {
    pub(crate) fn new(limits: &RateLimit) -> Arc<Self> {
        Arc::new(Self {
            checks: std::sync::atomic::AtomicU64::new(0),
            per_ip: limits.per_ip.and_then(quota).map(RateLimiter::keyed),
            per_key: limits.per_key.and_then(quota).map(RateLimiter::keyed),
            trusted_proxies: limits.trusted_proxies.clone(),
        })
    }

    /// The key the per-IP limit counts `request` under ([`client_ip`],
    /// then [`client_key`]); `None` without a peer address.
    fn client_key(&self, request: &Request) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())?;
        Some(client_key(client_ip(
            peer,
            request.headers(),
            &self.trusted_proxies,
        )))
    }

    fn api_key_hash(request: &Request) -> Option<[u8; 32]> {
        let headers = request.headers();
        let key = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))?;
        Some(Sha256::digest(key.trim().as_bytes()).into())
    }

    /// `Err(wait)` when the request is over a limit.
    pub(crate) fn check(&self, request: &Request) -> Result<(), Duration> {
        // Now and then, forget clients that are back to full capacity, so
        // the tables stay as small as the set of recent clients.
        let n = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 4096 == 4095 {
            self.shrink();
        }
        let wait = |not_until: governor::NotUntil<_>| {
            not_until.wait_time_from(DefaultClock::default().now())
        };
        if let Some(limiter) = &self.per_ip
            && let Some(ip) = self.client_key(request)
        {
            limiter.check_key(&ip).map_err(wait)?;
        }
        if let Some(limiter) = &self.per_key
            && let Some(hash) = Self::api_key_hash(request)
        {
            limiter.check_key(&hash).map_err(wait)?;
        }
        Ok(())
    }

    /// Forgets keys that are back to full capacity (bounded memory).
    fn shrink(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn ranges(texts: &[&str]) -> Vec<IpRange> {
        texts.iter().map(|t| t.parse().expect(t)).collect()
    }

    fn forwarded(lines: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for line in lines {
            headers.append(
                "x-forwarded-for",
                http::HeaderValue::from_str(line).expect("value"),
            );
        }
        headers
    }

    #[test]
    fn ranges_parse_and_contain_what_they_say() {
        let net: IpRange = "10.0.0.0/8".parse().expect("range");
        assert!(net.contains(ip("10.255.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::a00:1")), "an IPv6 address is not IPv4");
        let one: IpRange = " 192.0.2.7 ".parse().expect("address");
        assert!(one.contains(ip("192.0.2.7")));
        assert!(!one.contains(ip("192.0.2.8")));
        let v6: IpRange = "2001:db8:aa::/48".parse().expect("range");
        assert!(v6.contains(ip("2001:db8:aa:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:ab::1")));
        let all: IpRange = "0.0.0.0/0".parse().expect("range");
        assert!(all.contains(ip("203.0.113.1")));
        let mapped: IpRange = "::ffff:10.0.0.0/104".parse().expect("range");
        assert_eq!(mapped, net);
        assert_eq!(
            "10.1.2.3/8"
                .parse::<IpRange>()
                .expect("host bits")
                .to_string(),
            "10.0.0.0/8"
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "proxy",
            "::ffff:10.0.0.0/8",
        ] {
            assert_eq!(bad.parse::<IpRange>(), Err(InvalidIpRange), "{bad:?}");
        }
        let [v4, v6] = IpRange::loopback();
        assert!(v4.contains(ip("127.0.0.2")) && v6.contains(ip("::1")));
        assert!(!v4.contains(ip("10.0.0.1")) && !v6.contains(ip("::2")));
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64_and_ipv4_clients_are_keyed_alone() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1")),
            client_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "one /64, one key"
        );
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1")),
            "another /64, another key"
        );
        assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_ne!(client_key(ip("192.0.2.1")), client_key(ip("192.0.2.2")));
        assert_eq!(
            client_key(ip("::ffff:192.0.2.1")),
            ip("192.0.2.1"),
            "an IPv4-mapped address is its IPv4 client"
        );
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_peer_and_from_the_right() {
        let trusted = ranges(&["10.0.0.0/8", "::1"]);
        let forged = forwarded(&["198.51.100.99, 203.0.113.7"]);
        // A direct client: its own address, whatever it writes.
        assert_eq!(
            client_ip(ip("192.0.2.1"), &forged, &trusted),
            ip("192.0.2.1")
        );
        assert_eq!(client_ip(ip("192.0.2.1"), &forged, &[]), ip("192.0.2.1"));
        // Through a trusted proxy: the right-most hop it did not write.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &forged, &trusted),
            ip("203.0.113.7")
        );
        let chain = forwarded(&["198.51.100.99, 203.0.113.7, 10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &chain, &trusted),
            ip("203.0.113.7")
        );
        // Ports, brackets and IPv4-mapped hops are read.
        let ports = forwarded(&["[2001:db8::5]:443, 203.0.113.9:4711"]);
        assert_eq!(client_ip(ip("::1"), &ports, &trusted), ip("203.0.113.9"));
        let mapped = forwarded(&["::ffff:203.0.113.9"]);
        assert_eq!(client_ip(ip("::1"), &mapped, &trusted), ip("203.0.113.9"));
        // An unreadable hop: the last trusted address stands.
        let garbage = forwarded(&["203.0.113.7, unknown, 10.0.0.2"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &garbage, &trusted),
            ip("10.0.0.2")
        );
        // No header, or only trusted hops.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &http::HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        let inside = forwarded(&["10.0.0.9, 10.0.0.2"]);
        assert_eq!(client_ip(ip("10.0.0.1"), &inside, &trusted), ip("10.0.0.9"));
        // Non-ASCII bytes in one hop spoil only that hop.
        let mut headers = http::HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.7").expect("bytes"),
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted),
            ip("203.0.113.7")
        );
    }
}
