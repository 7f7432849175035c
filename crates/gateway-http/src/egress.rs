//! Which upstream hosts the gateway may call (the SSRF rules of SPEC.md "Server defaults").
//!
//! On a loopback bind every host is allowed: the caller is on this machine anyway, and
//! tests aim providers at mocks on 127.0.0.1. On any other bind, private, loopback,
//! link-local and cloud-metadata addresses are refused unless the host is allowed by
//! name (`--allow-host`). Literal hosts are checked before sending and resolved names
//! after DNS resolution, so a public name that resolves to 169.254.169.254 is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The egress rules.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// Refuse private and metadata destinations.
    pub public_only: bool,
    /// Host names allowed whatever they resolve to.
    pub allowed_hosts: Vec<String>,
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
    pub fn public_only(allowed_hosts: Vec<String>) -> Self {
        Self { public_only: true, allowed_hosts: allowed_hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect() }
    }

    /// Whether `host` (a name or a literal address) is allowed by name.
    pub fn is_allowed_by_name(&self, host: &str) -> bool {
        self.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Check a URL's host before sending. `Err` says why it is refused.
    pub fn check_host(&self, host: &str) -> Result<(), String> {
        if !self.public_only || self.is_allowed_by_name(host) {
            return Ok(());
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
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

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 224
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        || first == 0xfd00)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_only_refuses_private_metadata_and_internal_names() {
        let p = EgressPolicy::public_only(vec!["vllm.internal".into()]);
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
        ] {
            assert!(p.check_host(host).is_err(), "{host}");
        }
        for host in ["api.openai.com", "8.8.8.8", "vllm.internal"] {
            assert!(p.check_host(host).is_ok(), "{host}");
        }
        assert!(EgressPolicy::permissive().check_host("127.0.0.1").is_ok());
    }
}
