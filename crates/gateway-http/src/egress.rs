//! Which upstream hosts the gateway may call (the SSRF rules of SPEC.md "Server defaults").
//!
//! On a loopback bind every host is allowed: the caller is on this machine anyway, and
//! tests aim providers at mocks on 127.0.0.1. On any other bind, private, loopback,
//! link-local and cloud-metadata addresses are refused unless the host is allowed by
//! name (`--allow-host`, optionally narrowed to one port: `vllm.internal:8000`). Literal
//! hosts are checked before sending and resolved names after DNS resolution, so a public
//! name that resolves to 169.254.169.254 is refused too.
//!
//! IPv6 forms that carry an IPv4 address (mapped, IPv4-compatible, NAT64, 6to4, Teredo)
//! are refused outright rather than decoded: each can reach a private IPv4 host through a
//! translator the gateway cannot see, and no provider is reached that way.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The egress rules.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// Refuse private and metadata destinations.
    pub public_only: bool,
    /// Hosts allowed whatever they resolve to.
    pub allowed_hosts: Vec<AllowedHost>,
}

/// One `--allow-host` entry: a name or literal address, on any port or on one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Lowercase name or address (IPv6 without brackets).
    pub host: String,
    /// The only port allowed, when narrowed.
    pub port: Option<u16>,
}

impl AllowedHost {
    /// Parse `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let bad = || format!("`{text}` is not a host or host:port");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(port) => (host.to_owned(), Some(port)),
                None if after.is_empty() => (host.to_owned(), None),
                None => return Err(bad()),
            }
        } else if text.matches(':').count() > 1 {
            // A bare IPv6 address: no port possible without brackets.
            (text.clone(), None)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (text.clone(), None),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        let port = port.map(|p| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)).transpose()?;
        Ok(Self { host, port })
    }
}

const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata", "metadata.azure.com", "instance-data"];
const PRIVATE_SUFFIXES: &[&str] =
    &[".local", ".localdomain", ".internal", ".intranet", ".lan", ".home", ".corp", ".localhost"];

impl EgressPolicy {
    /// Allow everything (loopback binds, embedded use).
    pub fn permissive() -> Self {
        Self::default()
    }

    /// Refuse private destinations except `allowed_hosts`.
    pub fn public_only(allowed_hosts: Vec<AllowedHost>) -> Self {
        Self { public_only: true, allowed_hosts }
    }

    /// Whether `host` (a name or a literal address) is allowed by name, on some port.
    /// The resolver asks this (it does not know the port); [`EgressPolicy::check`] has
    /// already refused a port the entry does not allow.
    pub fn is_allowed_by_name(&self, host: &str) -> bool {
        let bare = bare_host(host);
        self.allowed_hosts.iter().any(|h| h.host.eq_ignore_ascii_case(bare))
    }

    /// Check a URL's host and port before sending. `Err` says why it is refused.
    pub fn check(&self, host: &str, port: u16) -> Result<(), String> {
        if !self.public_only {
            return Ok(());
        }
        let bare = bare_host(host).to_ascii_lowercase();
        let mut named = self.allowed_hosts.iter().filter(|h| h.host == bare).peekable();
        if named.peek().is_some() {
            return if named.any(|h| h.port.is_none_or(|p| p == port)) {
                Ok(())
            } else {
                Err(format!("{host} is allowed only on the port --allow-host names, not {port}"))
            };
        }
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return if is_public(ip) { Ok(()) } else { Err(format!("{host} is a private or reserved address")) };
        }
        if bare == "localhost"
            || METADATA_HOSTS.contains(&bare.as_str())
            || PRIVATE_SUFFIXES.iter().any(|s| bare.ends_with(s))
        {
            return Err(format!("{host} is a local, internal or metadata host"));
        }
        Ok(())
    }

    /// Whether a resolved address may be connected to.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        !self.public_only || is_public(ip)
    }
}

/// Globally routable unicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// `[v6]` → `v6`.
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 224
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking (198.18.0.0/15) and IETF protocol assignments (192.0.0.0/24).
        || (a == 198 && (b & 0xfe) == 18)
        || (a == 192 && b == 0 && c == 0))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let first = s[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks).
        || s[..6] == [0; 6]
        // NAT64: the well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48.
        || (first == 0x64 && s[1] == 0xff9b)
        // 6to4 (2002::/16) and Teredo (2001:0::/32).
        || first == 0x2002
        || (first == 0x2001 && s[1] == 0)
        // Documentation (2001:db8::/32).
        || (first == 0x2001 && s[1] == 0xdb8)
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || first == 0xfd00)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn allow(entries: &[&str]) -> EgressPolicy {
        EgressPolicy::public_only(entries.iter().map(|e| AllowedHost::parse(e).unwrap()).collect())
    }

    #[test]
    fn public_only_refuses_private_metadata_and_internal_names() {
        let p = allow(&["vllm.internal"]);
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "[::1]",
            "[fd00::1]",
            "metadata.google.internal",
            "x.local",
            "100.64.0.1",
            "[::ffff:10.0.0.1]",
            // IPv4 carried in IPv6: compatible, NAT64 (well-known and local-use), 6to4, Teredo.
            "[::10.0.0.1]",
            "[::a9fe:a9fe]",
            "[64:ff9b::a9fe:a9fe]",
            "[64:ff9b:1::a00:1]",
            "[2002:a00:1::1]",
            "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
            "[2001:db8::1]",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
        ] {
            assert!(p.check(host, 443).is_err(), "{host}");
        }
        for host in ["api.openai.com", "8.8.8.8", "vllm.internal", "198.20.0.1", "192.0.1.1", "[2606:4700::1111]"] {
            assert!(p.check(host, 443).is_ok(), "{host}");
        }
        assert!(EgressPolicy::permissive().check("127.0.0.1", 80).is_ok());
    }

    #[test]
    fn an_allowed_host_may_be_narrowed_to_one_port() {
        let p = allow(&["vllm.internal:8000", "[fd00::5]:9000", "10.0.0.7"]);
        assert!(p.check("vllm.internal", 8000).is_ok());
        let refused = p.check("vllm.internal", 22).unwrap_err();
        assert!(refused.contains("only on the port"), "{refused}");
        assert!(p.check("[fd00::5]", 9000).is_ok());
        assert!(p.check("[fd00::5]", 9001).is_err());
        assert!(p.check("10.0.0.7", 1).is_ok());
        assert!(p.is_allowed_by_name("VLLM.internal") && p.is_allowed_by_name("[fd00::5]"));
    }

    #[test]
    fn allow_host_entries_parse_or_say_why_not() {
        assert_eq!(AllowedHost::parse("A.b:80"), Ok(AllowedHost { host: "a.b".into(), port: Some(80) }));
        assert_eq!(AllowedHost::parse("fd00::1"), Ok(AllowedHost { host: "fd00::1".into(), port: None }));
        assert_eq!(AllowedHost::parse("[fd00::1]"), Ok(AllowedHost { host: "fd00::1".into(), port: None }));
        for bad in ["a:0", "a:99999", "a:x", "[fd00::1", "[fd00::1]x", ":80", ""] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }
}
