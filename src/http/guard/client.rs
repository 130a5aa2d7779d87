//! Who the client is: the TCP peer, unless the peer is a trusted proxy; then the
//! `X-Forwarded-For` list is walked from the right (the entry the nearest proxy added)
//! past the trusted proxies, and the first address that is not one is the client. A list
//! that cannot be read (not text, an entry that is no address) is not believed: the
//! client is then the peer. Without trusted proxies the header is never read.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

/// The header proxies append the address they were connected from to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client address of a request from `peer` with these headers.
pub fn client_address(
    trusted: &TrustedProxies,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.contains(peer) {
        return Some(peer);
    }
    Some(forwarded(trusted, headers).unwrap_or(peer))
}

/// The first untrusted address of `X-Forwarded-For` from the right; the leftmost entry
/// when every one is a trusted proxy; `None` without the header or when it is malformed.
fn forwarded(trusted: &TrustedProxies, headers: &HeaderMap) -> Option<IpAddr> {
    let mut entries = Vec::new();
    // Several header lines are one list, in order.
    for value in headers.get_all(X_FORWARDED_FOR) {
        entries.extend(value.to_str().ok()?.split(',').map(str::trim));
    }
    let mut leftmost = None;
    for entry in entries.iter().rev() {
        let address = parse_entry(entry)?;
        if !trusted.contains(address) {
            return Some(address);
        }
        leftmost = Some(address);
    }
    leftmost
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, or with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let address = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))?;
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).expect("a value"));
        }
        headers
    }

    fn trusted(text: &str) -> TrustedProxies {
        text.parse().expect("proxies")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let peer = Some(ip("203.0.113.9"));
        let forged = headers(&["198.51.100.1"]);
        assert_eq!(client_address(&TrustedProxies::default(), peer, &forged), peer);
        // A peer that is no trusted proxy is the client, whatever it forwards.
        assert_eq!(client_address(&trusted("10.0.0.0/8"), peer, &forged), peer);
    }

    #[test]
    fn from_a_trusted_proxy_the_first_untrusted_entry_from_the_right_is_the_client() {
        let proxies = trusted("10.0.0.0/8");
        let peer = Some(ip("10.0.0.1"));
        // The client forged the first entry; the proxies appended the rest.
        let list = headers(&["192.0.2.66, 198.51.100.7, 10.0.0.2"]);
        assert_eq!(client_address(&proxies, peer, &list), Some(ip("198.51.100.7")));
        // Several header lines read as one list.
        let lines = headers(&["192.0.2.66", "198.51.100.7:4711", "10.0.0.2"]);
        assert_eq!(client_address(&proxies, peer, &lines), Some(ip("198.51.100.7")));
        let v6 = headers(&["[2001:db8::7]:443"]);
        assert_eq!(client_address(&proxies, peer, &v6), Some(ip("2001:db8::7")));
    }

    #[test]
    fn every_entry_a_trusted_proxy_gives_the_leftmost() {
        let proxies = trusted("10.0.0.0/8");
        let list = headers(&["10.0.0.3, 10.0.0.2"]);
        assert_eq!(client_address(&proxies, Some(ip("10.0.0.1")), &list), Some(ip("10.0.0.3")));
    }

    #[test]
    fn a_missing_or_malformed_header_gives_the_peer() {
        let proxies = trusted("10.0.0.0/8");
        let peer = Some(ip("10.0.0.1"));
        assert_eq!(client_address(&proxies, peer, &HeaderMap::new()), peer);
        for bad in ["unknown", "198.51.100.7, not-an-ip", "198.51.100.7,,10.0.0.2", ""] {
            assert_eq!(client_address(&proxies, peer, &headers(&[bad])), peer, "{bad}");
        }
        // Garbage left of the client's entry is never read.
        let list = headers(&["garbage, 198.51.100.7"]);
        assert_eq!(client_address(&proxies, peer, &list), Some(ip("198.51.100.7")));
    }

    #[test]
    fn without_a_peer_there_is_no_address() {
        assert_eq!(client_address(&trusted("10.0.0.0/8"), None, &headers(&["192.0.2.1"])), None);
    }
}
