//! The webhooks' guard against server-side request forgery: a subscriber
//! URL must not make us call into our own network (the cloud metadata
//! service at 169.254.169.254, a database on 10.x, our own admin port on
//! 127.0.0.1).
//!
//! Two checks, because a URL's host is either an address or a name:
//!
//! - an address (or `localhost`) is checked once, when the notifier is
//!   built ([`check_host`]): reqwest connects to an address literal
//!   without asking any resolver;
//! - a name is checked at every connection, by the resolver reqwest asks
//!   ([`GuardedResolver`]): it drops the forbidden addresses a name
//!   resolves to, and fails when none is left, so a name that resolves
//!   (or later re-resolves: DNS rebinding) to a private address is never
//!   connected to.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The rule an address breaks, named for messages; `None` when a webhook
/// may be sent there.
///
/// Forbidden: loopback, private (RFC 1918, IPv6 unique local), link-local,
/// unspecified (0.0.0.0/8, `::`), broadcast, multicast, shared CGNAT
/// space (100.64.0.0/10), the documentation and benchmarking ranges,
/// other reserved IPv4 space (192.0.0.0/24, 240.0.0.0/4), deprecated
/// IPv6 site-local and IPv4-compatible addresses, the IPv6 discard prefix
/// and Teredo; an IPv6 address that embeds an IPv4 one (IPv4-mapped,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by the IPv4 address.
pub(crate) fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0, _, _] => Some("IPv4-compatible (deprecated)"),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => forbidden_v4(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Some("private"),
        [0x2002, hi, lo, ..] => forbidden_v4(embedded(hi, lo)),
        [0x0100, 0, 0, 0, ..] => Some("discard-only"),
        [0x2001, 0, ..] => Some("Teredo"),
        [0x2001, 0x0db8, ..] => Some("documentation"),
        [first, ..] if first & 0xfff0 == 0x3ff0 => Some("documentation"),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("private"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("link-local"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("site-local (deprecated)"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Checks a subscriber URL's host when the notifier is built: an address
/// must not be forbidden, and `localhost` (and `*.localhost`, RFC 6761)
/// is loopback whatever a resolver says. Names are left to the resolver.
pub(crate) fn check_host(url: &url::Url) -> Result<(), String> {
    match url.host() {
        None => Err("names no host".into()),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Err(format!("points at {name}, a loopback name {GUARD}"))
            } else {
                Ok(())
            }
        }
    }
}

fn check_ip(ip: IpAddr) -> Result<(), String> {
    match forbidden(ip) {
        Some(rule) => Err(format!("points at a {rule} address ({ip}) {GUARD}")),
        None => Ok(()),
    }
}

/// How messages say which rule refused an address, and how to lift it.
const GUARD: &str = "that webhooks may not reach (SSRF guard; allow_private lifts it)";

/// Every address a name resolved to is forbidden: the connection is
/// refused, and the delivery fails for good (it names the rules, not the
/// addresses, which say more about our network than a log needs).
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to {rules} addresses {GUARD}")]
pub(crate) struct Refused {
    host: String,
    rules: String,
}

/// The addresses of `host` a webhook may be sent to.
///
/// # Errors
///
/// [`Refused`] when `found` has addresses and all are forbidden.
pub(crate) fn keep_allowed(
    host: &str,
    found: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, Refused> {
    let mut kept = Vec::new();
    let mut rules: Vec<&str> = Vec::new();
    for addr in found {
        match forbidden(addr.ip()) {
            None => kept.push(addr),
            Some(rule) if !rules.contains(&rule) => rules.push(rule),
            Some(_) => {}
        }
    }
    if kept.is_empty() && !rules.is_empty() {
        return Err(Refused {
            host: host.to_owned(),
            rules: rules.join(", "),
        });
    }
    Ok(kept)
}

/// The [`Refused`] anywhere in an error's chain (reqwest and hyper wrap
/// the resolver's error; an `io::Error` hides what it wraps from
/// `source()`, so its inner error is looked at too).
pub(crate) fn refused_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused);
        }
        if let Some(inner) = err
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<Refused>())
        {
            return Some(inner);
        }
        next = err.source();
    }
    None
}

/// Looks a name up: the system's resolver, or a fake one in tests.
pub(crate) type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system's resolver (`getaddrinfo`, on tokio's blocking pool).
pub(crate) fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
    })
}

/// The resolver reqwest asks for every new connection of a webhook
/// client: the lookup's answer without forbidden addresses.
pub(crate) struct GuardedResolver {
    lookup: Lookup,
}

impl GuardedResolver {
    pub(crate) fn new(lookup: Lookup) -> Self {
        GuardedResolver { lookup }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = Arc::clone(&self.lookup);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = lookup(host.clone()).await?;
            let kept = keep_allowed(&host, found)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn internal_and_special_addresses_are_forbidden_by_name_of_rule() {
        for (addr, rule) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("10.0.0.5", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.255", "shared (CGNAT)"),
            ("192.0.2.10", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.99", "documentation"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("240.0.0.1", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("::127.0.0.1", "IPv4-compatible (deprecated)"),
            ("2001:0:4136:e378::1", "Teredo"),
        ] {
            assert_eq!(forbidden(ip(addr)), Some(rule), "{addr}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80e::200e",
        ] {
            assert_eq!(forbidden(ip(addr)), None, "{addr}");
        }
    }

    fn sock(text: &str) -> SocketAddr {
        SocketAddr::new(ip(text), 443)
    }

    #[test]
    fn resolving_keeps_public_addresses_and_drops_the_rest() {
        let kept = keep_allowed(
            "hooks.example.com",
            [sock("10.0.0.1"), sock("93.184.216.34"), sock("::1")],
        )
        .expect("one public address");
        assert_eq!(kept, [sock("93.184.216.34")]);
    }

    #[test]
    fn a_name_with_only_forbidden_addresses_is_refused_naming_the_rules() {
        let err = keep_allowed(
            "rebind.example.com",
            [sock("127.0.0.1"), sock("192.168.0.7"), sock("127.0.0.2")],
        )
        .expect_err("nothing left");
        let text = err.to_string();
        assert!(
            text.starts_with("rebind.example.com resolves only to loopback, private addresses"),
            "{text}"
        );
        assert!(!text.contains("192.168.0.7"), "{text}");
    }

    #[test]
    fn a_name_with_no_address_is_not_an_ssrf_refusal() {
        assert_eq!(keep_allowed("nowhere.example", []).expect("no refusal"), []);
    }

    #[test]
    fn the_guarded_resolver_filters_what_the_lookup_answers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let lookup: Lookup = Arc::new(|host: String| {
            Box::pin(async move {
                Ok(match host.as_str() {
                    "mixed.example" => vec![sock("169.254.169.254"), sock("93.184.216.34")],
                    _ => vec![sock("127.0.0.1")],
                })
            })
        });
        let resolver = GuardedResolver::new(lookup);
        let name = |n: &str| n.parse::<Name>().expect("a name");
        let mixed: Vec<SocketAddr> = runtime
            .block_on(resolver.resolve(name("mixed.example")))
            .expect("one address left")
            .collect();
        assert_eq!(mixed, [sock("93.184.216.34")]);
        let err = runtime
            .block_on(resolver.resolve(name("rebound.example")))
            .err()
            .expect("refused");
        assert!(refused_in(&*err).is_some(), "{err}");
    }

    #[test]
    fn a_refusal_is_found_inside_an_io_error() {
        let refused = keep_allowed("x.example", [sock("10.0.0.1")]).expect_err("refused");
        let wrapped = io::Error::other(refused);
        assert!(refused_in(&wrapped).is_some());
        assert!(refused_in(&io::Error::other("dns error")).is_none());
    }

    #[test]
    fn hosts_that_are_forbidden_addresses_or_localhost_are_refused_up_front() {
        for raw in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/",
            "http://10.0.0.5/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://[::ffff:7f00:1]/",
        ] {
            let url = url::Url::parse(raw).expect("a URL");
            assert!(check_host(&url).is_err(), "{raw}");
        }
        let url = url::Url::parse("https://hooks.example.com/x").expect("a URL");
        assert_eq!(check_host(&url), Ok(()));
    }
}
