//! Webhook targets: where a submission's state changes are sent, which of them, and which
//! hosts a server lets users name.
//!
//! A URL is checked when the submission is parsed (absolute `http`/`https`, no userinfo, a host
//! the server allows), so a bad one is a 422 naming `notify_url`. Names that resolve to private
//! addresses can only be caught when they are resolved, at send time; the sender asks
//! [`refused_address`] of every address it would connect to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest `notify_url` accepted.
pub const MAX_NOTIFY_URL_BYTES: usize = 2048;

/// Which state changes a submission's `notify_url` is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyScope {
    /// Every change of its state.
    #[default]
    All,
    /// Only the change into its final state (`succeeded`, `failed` or `cancelled`).
    Final,
}

impl NotifyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyScope::All => "all",
            NotifyScope::Final => "final",
        }
    }
}

/// Where and what a submission's state changes are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub url: String,
    pub scope: NotifyScope,
}

/// Checks a `notify_url` against the rules and the server's allowed hosts (`allowed`; empty:
/// every public host).
pub fn parse_notify_url(text: &str, allowed: &[String]) -> Result<url::Url, String> {
    if text.len() > MAX_NOTIFY_URL_BYTES {
        return Err(format!("must be at most {MAX_NOTIFY_URL_BYTES} bytes"));
    }
    let url = url::Url::parse(text).map_err(|error| format!("is not an absolute URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    let Some(host) = url.host_str() else {
        return Err("must name a host".into());
    };
    if host_allowed(host, allowed) {
        return Ok(url);
    }
    if !allowed.is_empty() {
        return Err(format!(
            "names a host this server does not send to; allowed: {}",
            allowed.join(", ")
        ));
    }
    let local_name =
        host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
    let address = match url.host() {
        Some(url::Host::Ipv4(address)) => Some(IpAddr::V4(address)),
        Some(url::Host::Ipv6(address)) => Some(IpAddr::V6(address)),
        _ => None,
    };
    if local_name || address.is_some_and(refused_address) {
        return Err(
            "names a private, loopback or link-local address, which this server does not send to"
                .into(),
        );
    }
    Ok(url)
}

/// Whether the operator listed `host` (`--allowed-notify-host`), case aside; IPv6 addresses
/// match with or without their brackets.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().any(|listed| {
        let listed = listed.trim_start_matches('[').trim_end_matches(']');
        listed.eq_ignore_ascii_case(bare)
    })
}

/// Whether an address is one a webhook may not reach unless its host is allowed: loopback,
/// private, link-local, shared (carrier-grade NAT), unspecified, broadcast or multicast.
pub fn refused_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(address: Ipv4Addr) -> bool {
    let [first, second, ..] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || first == 0
        // 100.64.0.0/10, shared address space.
        || (first == 100 && (second & 0xc0) == 64)
}

fn refused_v6(address: Ipv6Addr) -> bool {
    let first = address.segments()[0];
    address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        // fc00::/7, unique local.
        || (first & 0xfe00) == 0xfc00
        // fe80::/10, link-local.
        || (first & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_http_and_https_urls_are_accepted() {
        for url in [
            "https://portal.example.org/hooks/1",
            "http://93.184.216.34:8080/x",
        ] {
            assert!(parse_notify_url(url, &[]).is_ok(), "{url}");
        }
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for url in [
            "not a url",
            "/relative",
            "ftp://example.org/x",
            "https://user:pw@example.org/x",
            "https://user@example.org/x",
        ] {
            assert!(parse_notify_url(url, &[]).is_err(), "{url}");
        }
    }

    #[test]
    fn local_targets_are_refused_unless_their_host_is_allowed() {
        for url in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://10.1.2.3/x",
            "http://192.168.0.1/x",
            "http://169.254.169.254/latest",
            "http://[::1]/x",
            "http://[fe80::1]/x",
            "http://[::ffff:127.0.0.1]/x",
        ] {
            assert!(parse_notify_url(url, &[]).is_err(), "{url}");
        }
        let allowed = ["127.0.0.1".to_owned(), "::1".to_owned()];
        assert!(parse_notify_url("http://127.0.0.1:9/x", &allowed).is_ok());
        assert!(parse_notify_url("http://[::1]:9/x", &allowed).is_ok());
    }

    #[test]
    fn with_allowed_hosts_only_those_are_accepted() {
        let allowed = ["hooks.example.org".to_owned()];
        assert!(parse_notify_url("https://HOOKS.example.org/x", &allowed).is_ok());
        assert!(parse_notify_url("https://other.example.org/x", &allowed).is_err());
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_refused() {
        for refused in [
            "127.0.0.2",
            "10.0.0.1",
            "172.16.5.4",
            "100.64.0.1",
            "0.0.0.0",
            "::",
        ] {
            assert!(
                refused_address(refused.parse().expect("address")),
                "{refused}"
            );
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(
                !refused_address(public.parse().expect("address")),
                "{public}"
            );
        }
    }
}
