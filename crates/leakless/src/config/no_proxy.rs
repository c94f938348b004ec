//! `NO_PROXY`: the hosts that skip a proxy, with Go's rules
//! (`httpproxy.Config.NoProxy`): comma- or space-separated entries, each
//! `*` (everything), an IP address, a CIDR block, or a domain name; a name
//! matches itself and its subdomains (`example.com`), a leading dot or
//! `*.` only subdomains (`.example.com`); any entry but a CIDR may carry a
//! port (`example.com:8080`) and then matches that port alone.

use std::net::IpAddr;

/// Hosts that go direct instead of through a [`Proxy`](crate::Proxy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    /// (network, prefix length, port).
    ips: Vec<(IpAddr, u8, Option<u16>)>,
    /// (`.suffix`, also the bare name, port).
    domains: Vec<(String, bool, Option<u16>)>,
    /// Go's rule for proxies from the environment: `localhost` and
    /// loopback addresses never go through them.
    loopback: bool,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value; `None` when it lists nothing.
    pub fn from_string(list: &str) -> Option<NoProxy> {
        let mut out = NoProxy::default();
        for entry in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            out.add(&entry.to_ascii_lowercase());
        }
        (out != NoProxy::default()).then_some(out)
    }

    /// `NO_PROXY`, else `no_proxy`, from the process environment.
    pub fn from_env() -> Option<NoProxy> {
        let value = std::env::var("NO_PROXY")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| std::env::var("no_proxy").ok())?;
        NoProxy::from_string(&value)
    }

    pub(crate) fn with_loopback(mut self) -> NoProxy {
        self.loopback = true;
        self
    }

    fn add(&mut self, entry: &str) {
        if entry == "*" {
            self.all = true;
            return;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Ok(ip), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u8>()) {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                self.ips.push((ip, bits.min(max), None));
            }
            return;
        }
        let (host, port) = split_port(entry);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            self.ips.push((ip, bits, port));
        } else if let Some(suffix) = host.strip_prefix("*.") {
            self.domains.push((format!(".{suffix}"), false, port));
        } else if host.starts_with('.') {
            self.domains.push((host.to_owned(), false, port));
        } else if !host.is_empty() {
            self.domains.push((format!(".{host}"), true, port));
        }
    }

    /// Whether `host` (a name or an address, no brackets) at `port` skips
    /// the proxy.
    pub(crate) fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_end_matches('.');
        if let Ok(ip) = host.parse::<IpAddr>() {
            // ::ffff:127.0.0.1 is loopback too.
            if self.loopback && ip.to_canonical().is_loopback() {
                return true;
            }
            return self
                .ips
                .iter()
                .any(|&(net, bits, p)| p.is_none_or(|p| p == port) && in_network(ip, net, bits));
        }
        let host = host.to_ascii_lowercase();
        if self.loopback && host == "localhost" {
            return true;
        }
        self.domains.iter().any(|(suffix, bare, p)| {
            p.is_none_or(|p| p == port)
                && (host.ends_with(suffix.as_str()) || (*bare && host == suffix[1..]))
        })
    }
}

/// `host:port` → (host, port); a bare IPv6 address has no port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if entry.starts_with('[') {
        if let Some((host, rest)) = entry.split_once(']') {
            return (
                &host[1..],
                rest.strip_prefix(':').and_then(|p| p.parse().ok()),
            );
        }
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (NO_PROXY, host, port, skips the proxy), after Go's httpproxy tests.
    const TABLE: &[(&str, &str, u16, bool)] = &[
        ("", "example.com", 80, false),
        ("*", "anything.example", 443, true),
        ("example.com", "example.com", 80, true),
        ("example.com", "www.example.com", 80, true),
        ("example.com", "notexample.com", 80, false),
        ("example.com", "example.com.evil", 80, false),
        (".example.com", "example.com", 80, false),
        (".example.com", "www.example.com", 80, true),
        ("*.example.com", "example.com", 80, false),
        ("*.example.com", "a.b.example.com", 80, true),
        ("EXAMPLE.com", "www.Example.COM", 80, true),
        ("example.com:8080", "example.com", 8080, true),
        ("example.com:8080", "example.com", 80, false),
        ("foo.test, bar.test", "bar.test", 80, true),
        ("foo.test bar.test", "x.bar.test", 80, true),
        ("10.0.0.1", "10.0.0.1", 80, true),
        ("10.0.0.1", "10.0.0.2", 80, false),
        ("10.0.0.1:443", "10.0.0.1", 80, false),
        ("10.0.0.0/8", "10.200.3.4", 80, true),
        ("10.0.0.0/8", "11.0.0.1", 80, false),
        ("192.168.1.0/24", "192.168.1.77", 80, true),
        ("192.168.1.0/24", "192.168.2.1", 80, false),
        ("::1", "::1", 80, true),
        ("[::1]:8080", "::1", 8080, true),
        ("[::1]:8080", "::1", 80, false),
        ("2001:db8::/32", "2001:db8:1::5", 80, true),
        ("2001:db8::/32", "2001:db9::5", 80, false),
        ("0.0.0.0/0", "8.8.8.8", 80, true),
        ("example.com", "example.com.", 80, true),
    ];

    #[test]
    fn no_proxy_table() {
        for &(list, host, port, skips) in TABLE {
            let got = NoProxy::from_string(list).is_some_and(|n| n.matches(host, port));
            assert_eq!(got, skips, "NO_PROXY={list:?} {host}:{port}");
        }
    }

    #[test]
    fn loopback_skips_only_when_asked() {
        let n = NoProxy::from_string("example.com").unwrap();
        assert!(!n.matches("localhost", 80) && !n.matches("127.0.0.1", 80));
        let n = n.with_loopback();
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(n.matches(host, 80), "{host}");
        }
        assert!(!n.matches("10.0.0.1", 80));
    }
}
