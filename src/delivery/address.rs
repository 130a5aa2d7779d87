//! Which webhook URLs casefile calls: http and https only, no credentials, and (unless
//! `CASEFILE_WEBHOOK_ALLOW_PRIVATE=true`) only hosts whose every address is public — not
//! loopback, private, link-local, unspecified, multicast, shared (CGNAT), reserved or
//! broadcast, in IPv4 or IPv6, IPv4-mapped, NAT64 and 6to4 addresses judged by the
//! IPv4 address inside. The check resolves the host and returns the checked address, and
//! the caller connects to exactly that address, so DNS cannot change between the check
//! and the connection (rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Longest URL accepted.
pub const MAX_URL: usize = 2048;

/// A URL that passed [`parse`]: http or https, with a host and no credentials.
pub fn parse(text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL {
        return Err(format!("at most {MAX_URL} characters"));
    }
    let url = Url::parse(text.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("no credentials in the URL (sign with the secret instead)".to_owned());
    }
    if url.host().is_none() {
        return Err("the URL needs a host".to_owned());
    }
    Ok(url)
}

/// The address to connect to for `url`: its host resolved, every address checked.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<SocketAddr, String> {
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|e| format!("the host does not resolve ({e})"))?
            .collect(),
        None => return Err("the URL needs a host".to_owned()),
    };
    let first = *addresses.first().ok_or("the host has no address")?;
    if !allow_private && let Some(bad) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "the host resolves to {}, a loopback, private, link-local or otherwise \
             non-public address",
            bad.ip()
        ));
    }
    Ok(first)
}

/// Whether an address is one casefile may call without `CASEFILE_WEBHOOK_ALLOW_PRIVATE`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let o = ip.octets();
        return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if segments[0] == 0x2002 {
        let o = ip.octets();
        return is_public_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // IPv4-compatible (deprecated) ::a.b.c.d
        || segments[..6] == [0, 0, 0, 0, 0, 0]
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)) // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().expect("an address"))
    }

    #[test]
    fn non_public_addresses_are_refused_in_every_form() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
        for allowed in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(public(allowed), "{allowed} is public");
        }
    }

    #[test]
    fn only_http_urls_without_credentials_are_taken() {
        assert!(parse("https://hooks.example.com/x").is_ok());
        assert!(parse("http://127.0.0.1:8080/").is_ok());
        assert!(parse("ftp://example.com/").is_err());
        assert!(parse("file:///etc/passwd").is_err());
        assert!(parse("https://user:pw@example.com/").is_err());
        assert!(parse("not a url").is_err());
    }

    #[tokio::test]
    async fn a_loopback_host_is_refused_unless_allowed() {
        let url = parse("http://127.0.0.1:9/").expect("url");
        assert!(resolve(&url, false).await.is_err());
        assert_eq!(resolve(&url, true).await, Ok("127.0.0.1:9".parse().expect("addr")));
        let url = parse("http://[::ffff:127.0.0.1]:9/").expect("url");
        assert!(resolve(&url, false).await.is_err());
    }
}
