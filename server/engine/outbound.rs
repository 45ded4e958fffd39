//! Outbound HTTP for the `http.request` node: one shared client, and the guard that keeps flows
//! from reaching Sluice's own network (SSRF).
//!
//! A target is allowed when every address it is reached at is a public (globally routable)
//! address, or when the operator allowed it in `SLUICE_HTTP_ALLOW`. The check runs where the
//! connection is made, so nothing can change between check and connect:
//!
//! - Host names are resolved by [`GuardedResolver`], the client's own DNS resolver: it resolves,
//!   drops every address that is not allowed, and hands the client exactly the vetted addresses
//!   to connect to. A name that resolves to a private address on the second lookup (DNS
//!   rebinding) is refused at that lookup.
//! - IP literals (`http://10.0.0.1/`) are not resolved; [`Outbound::check_url`] vets them
//!   before the request is sent, and the redirect policy vets every hop the same way (host
//!   names of later hops go through the resolver again).
//! - Proxies from the environment are ignored, so the connection goes where it was vetted.
//! - An entry may name a port (`billing.internal:8443`, `10.0.0.0/8:5432`). Ports are checked
//!   by [`Outbound::check_url`] on the URL and every redirect hop, before anything resolves or
//!   connects; the resolver never learns the port, so a host name entry with a port admits the
//!   name there once its URL passed the port check, and a range with a port admits only IP
//!   literals (a name that resolves into such a range needs its own `name:port` entry).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Largest response body an `http.request` reads.
pub const MAX_RESPONSE_BYTES: usize = 5 << 20;

/// Redirects followed per request (each hop is checked again).
pub const MAX_REDIRECTS: usize = 5;

/// The outbound side of the runtime: the allow-list and the client built once around it.
pub struct Outbound {
    pub client: reqwest::Client,
    pub allow: Arc<AllowList>,
}

/// Targets the operator allowed although they are not public (`SLUICE_HTTP_ALLOW`).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    hosts: Vec<String>,
    nets: Vec<ipnet::IpNet>,
    host_ports: Vec<(String, u16)>,
    net_ports: Vec<(ipnet::IpNet, u16)>,
}

/// A target refused by the guard. Carried as the source of the client's error, so the node
/// can tell a refusal from a network failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl AllowList {
    /// `hosts` are lowercase names (`*.name` for subdomains); `nets` are address ranges.
    pub fn new(hosts: Vec<String>, nets: Vec<ipnet::IpNet>) -> AllowList {
        AllowList {
            hosts,
            nets,
            ..AllowList::default()
        }
    }

    /// Adds entries allowed on one port only: host name patterns and address ranges.
    pub fn with_ports(
        mut self,
        host_ports: Vec<(String, u16)>,
        net_ports: Vec<(ipnet::IpNet, u16)>,
    ) -> AllowList {
        self.host_ports = host_ports;
        self.net_ports = net_ports;
        self
    }

    /// Whether a host name was allowed by name, on some port. Only the resolver asks this,
    /// for names whose URL passed [`AllowList::host_port_refusal`].
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| name_matches(h, &host))
            || self.host_ports.iter().any(|(h, _)| name_matches(h, &host))
    }

    /// Why a host name may not be requested on `port`: it is allowed by name only on other
    /// ports. A name no entry mentions is judged by its addresses, by the resolver.
    fn host_port_refusal(&self, host: &str, port: u16) -> Option<Refused> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.hosts.iter().any(|h| name_matches(h, &host)) {
            return None;
        }
        let ports: Vec<u16> = self
            .host_ports
            .iter()
            .filter(|(h, _)| name_matches(h, &host))
            .map(|(_, p)| *p)
            .collect();
        if ports.is_empty() || ports.contains(&port) {
            return None;
        }
        Some(Refused(format!(
            "{host} is allowed by SLUICE_HTTP_ALLOW only on port {}, not {port}",
            join_ports(&ports)
        )))
    }

    /// Whether an IP literal may be requested on `port`: public, inside an allowed range, or
    /// inside a range allowed on that port.
    pub fn allows_ip_port(&self, ip: IpAddr, port: u16) -> bool {
        let canonical = ip.to_canonical();
        self.allows_ip(ip)
            || self
                .net_ports
                .iter()
                .any(|(n, p)| *p == port && n.contains(&canonical))
    }

    /// Whether an address may be connected to: public, or inside an allowed range.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        is_global(ip) || self.nets.iter().any(|n| n.contains(&ip))
    }
}

impl Outbound {
    /// Builds the shared client. Redirects are followed only to targets the guard allows.
    pub fn new(allow: AllowList) -> Result<Outbound, reqwest::Error> {
        let allow = Arc::new(allow);
        let for_redirects = allow.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match check_url(&for_redirects, attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver {
                allow: allow.clone(),
            }))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Outbound { client, allow })
    }

    /// Checks a URL before it is requested: an http(s) URL whose IP literal host, if any, is
    /// allowed. Host names are checked when they are resolved.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        check_url(&self.allow, url)
    }
}

fn check_url(allow: &AllowList, url: &url::Url) -> Result<(), Refused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused(format!(
            "only http and https URLs can be requested, not {}:",
            url.scheme()
        )));
    }
    let Some(port) = url.port_or_known_default() else {
        return Err(Refused("the URL has no port".into()));
    };
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(name)) => {
            return match allow.host_port_refusal(name, port) {
                Some(refused) => Err(refused),
                None => Ok(()),
            };
        }
        None => return Err(Refused("the URL has no host".into())),
    };
    if allow.allows_ip_port(ip, port) {
        return Ok(());
    }
    let ports: Vec<u16> = allow
        .net_ports
        .iter()
        .filter(|(n, _)| n.contains(&ip.to_canonical()))
        .map(|(_, p)| *p)
        .collect();
    if ports.is_empty() {
        Err(Refused(format!(
            "{ip} is not a public address; allow it with SLUICE_HTTP_ALLOW"
        )))
    } else {
        Err(Refused(format!(
            "{ip} is allowed by SLUICE_HTTP_ALLOW only on port {}, not {port}",
            join_ports(&ports)
        )))
    }
}

/// Whether `host` (lowercase, no trailing dot) matches an entry (`*.name` for subdomains).
fn name_matches(entry: &str, host: &str) -> bool {
    match entry.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.')),
        None => entry == host,
    }
}

fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The client's DNS resolver: resolves with the system resolver and returns only the
/// addresses the guard allows, which are then the only ones the client connects to.
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            // The port is replaced by the client with the URL's port.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let by_name = allow.allows_host(&host);
            let vetted: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| by_name || allow.allows_ip(a.ip()))
                .collect();
            if vetted.is_empty() {
                let why = if found.is_empty() {
                    format!("{host} has no addresses")
                } else {
                    format!(
                        "{host} resolves to {}, which is not a public address; allow it with SLUICE_HTTP_ALLOW",
                        found[0].ip()
                    )
                };
                return Err(Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(vetted.into_iter()) as Addrs)
        })
    }
}

/// The refusal inside a client error, if the guard refused the target.
pub fn refusal(e: &reqwest::Error) -> Option<&Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

/// Whether an address is globally routable: not loopback, private, link-local, shared (CGNAT),
/// unspecified, multicast, broadcast, documentation, benchmarking or reserved, after the IANA
/// special-purpose registries. IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4)
/// are judged by that address.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                   // "this network", 0.0.0.0/8
        || a == 10                             // private
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64/10
        || a == 127                            // loopback
        || (a == 169 && b == 254)              // link-local (cloud metadata lives here)
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (b == 18 || b == 19))  // benchmarking
        || (a == 198 && b == 51 && c == 100)   // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)    // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // IPv4-mapped ::ffff:a.b.c.d and NAT64 64:ff9b::a.b.c.d reach the IPv4 address.
    if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_global_v4(embedded_v4(s[6], s[7]));
    }
    // 6to4 2002:a.b.c.d::/48.
    if s[0] == 0x2002 {
        return is_global_v4(embedded_v4(s[1], s[2]));
    }
    // Only global unicast 2000::/3 can be public; it holds these special blocks.
    (s[0] & 0xe000) == 0x2000
        && !(s[0] == 0x2001 && s[1] < 0x0200) // 2001::/23 IETF protocol assignments (Teredo, ...)
        && !(s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        && !(s[0] == 0x3fff && s[1] < 0x1000) // documentation 3fff::/20
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn non_public_ipv4_addresses_are_not_global() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "192.0.0.8",
        ] {
            assert!(!is_global(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn public_ipv4_addresses_are_global() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "192.169.0.1",
            "223.255.255.255",
        ] {
            assert!(is_global(ip(a)), "{a} is public");
        }
    }

    #[test]
    fn non_public_ipv6_addresses_are_not_global() {
        for a in [
            "::1",
            "::",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "3fff::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:c0a8:0101::1",
            "::127.0.0.1",
            "100::1",
        ] {
            assert!(!is_global(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn public_ipv6_addresses_and_mapped_public_ipv4_are_global() {
        for a in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(is_global(ip(a)), "{a} is public");
        }
    }

    #[test]
    fn entries_with_a_port_allow_only_that_port() {
        let allow = AllowList::new(vec!["open.internal".into()], vec![]).with_ports(
            vec![
                ("billing.internal".into(), 8443),
                ("*.svc.local".into(), 80),
                ("open.internal".into(), 9000),
            ],
            vec![
                ("10.0.0.0/8".parse().expect("net"), 5432),
                ("fd00::1/128".parse().expect("net"), 443),
            ],
        );
        let check = |u: &str| check_url(&allow, &url::Url::parse(u).expect("url"));
        for ok in [
            "https://billing.internal:8443/x",
            "http://a.svc.local/",
            "http://a.svc.local:80/",
            "http://10.1.2.3:5432/",
            "http://[::ffff:10.1.2.3]:5432/",
            "https://[fd00::1]/",
            "http://open.internal:1234/",
            "https://example.com:22/",
        ] {
            assert!(check(ok).is_ok(), "{ok} is allowed");
        }
        for refused in [
            "https://billing.internal/x",
            "http://billing.internal:8080/",
            "https://a.svc.local/",
            "http://10.1.2.3/",
            "http://10.1.2.3:5433/",
            "http://[fd00::1]:8443/",
            "http://[fd00::2]:443/",
            "http://127.0.0.1:5432/",
        ] {
            assert!(check(refused).is_err(), "{refused} must be refused");
        }
        let why = check("http://10.1.2.3:22/").expect_err("refused").0;
        assert!(why.contains("only on port 5432"), "{why}");
        // The resolver admits names of ported entries (their port was checked first), but
        // never addresses that only a ported range allows: it cannot see the port.
        assert!(allow.allows_host("billing.internal"));
        assert!(!allow.allows_ip(ip("10.1.2.3")));
    }

    #[test]
    fn the_allow_list_admits_ranges_and_host_names() {
        let allow = AllowList::new(
            vec!["api.internal".into(), "*.svc.local".into()],
            vec![
                "10.0.0.0/8".parse().expect("net"),
                "::1/128".parse().expect("net"),
            ],
        );
        assert!(allow.allows_ip(ip("10.9.8.7")));
        assert!(
            allow.allows_ip(ip("::ffff:10.9.8.7")),
            "mapped addresses match IPv4 ranges"
        );
        assert!(allow.allows_ip(ip("::1")));
        assert!(!allow.allows_ip(ip("127.0.0.1")));
        assert!(!allow.allows_ip(ip("192.168.0.1")));
        assert!(allow.allows_host("API.internal."));
        assert!(allow.allows_host("a.b.svc.local"));
        assert!(
            !allow.allows_host("svc.local"),
            "a wildcard covers subdomains only"
        );
        assert!(!allow.allows_host("evilsvc.local"));
        assert!(!allow.allows_host("api.internal.evil.com"));
    }

    #[test]
    fn urls_with_private_ip_literals_and_other_schemes_are_refused() {
        let allow = AllowList::default();
        for u in [
            "http://127.0.0.1/",
            "http://10.0.0.1:8080/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0/",
            "file:///etc/passwd",
            "ftp://8.8.8.8/",
        ] {
            let url = url::Url::parse(u).expect("url");
            assert!(check_url(&allow, &url).is_err(), "{u} must be refused");
        }
        for u in ["https://8.8.8.8/", "https://example.com/a?b=c"] {
            let url = url::Url::parse(u).expect("url");
            assert!(check_url(&allow, &url).is_ok(), "{u} is fine");
        }
    }
}
