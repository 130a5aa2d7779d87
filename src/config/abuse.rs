//! Settings against abuse: rate limits, WebSocket caps, the proxies whose
//! `X-Forwarded-For` is believed, and the origins browsers may call from.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use clap::Args;
use ipnet::IpNet;

/// The default of `CASEFILE_RATE_LIMIT_PER_MINUTE`.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 1200;
/// The default of `CASEFILE_AUTH_FAILURES_PER_MINUTE`.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 30;
/// The default of `CASEFILE_WS_MAX_CONNECTIONS_PER_TOKEN`.
pub const DEFAULT_WS_MAX_CONNECTIONS_PER_TOKEN: usize = 20;
/// The default of `CASEFILE_WS_OPERATIONS_PER_SECOND`.
pub const DEFAULT_WS_OPERATIONS_PER_SECOND: u32 = 50;

/// Rate limits, WebSocket caps, trusted proxies and CORS (see the README's configuration).
#[derive(Debug, Clone, Args)]
pub struct AbuseLimits {
    /// Requests a minute one API token may make on this server: GraphQL over HTTP, the
    /// REST routes, and each WebSocket `connection_init` and operation. Over it: 429
    /// `RATE_LIMITED` with `Retry-After`. 0 turns the limit off.
    #[arg(long, env = "CASEFILE_RATE_LIMIT_PER_MINUTE", default_value_t = DEFAULT_RATE_LIMIT_PER_MINUTE)]
    pub rate_limit_per_minute: u32,

    /// Failed authentications (a missing, unknown, revoked or expired token) a minute from
    /// one client address (IPv6: one /64); over it the address gets 429 `RATE_LIMITED`,
    /// even with a good token, until the window frees up. 0 turns the limit off.
    #[arg(long, env = "CASEFILE_AUTH_FAILURES_PER_MINUTE", default_value_t = DEFAULT_AUTH_FAILURES_PER_MINUTE)]
    pub auth_failures_per_minute: u32,

    /// Most WebSockets one token may hold open on this server; the next is closed with
    /// 4429 after its `connection_init`. 0: no cap.
    #[arg(long, env = "CASEFILE_WS_MAX_CONNECTIONS_PER_TOKEN", default_value_t = DEFAULT_WS_MAX_CONNECTIONS_PER_TOKEN)]
    pub ws_max_connections_per_token: usize,

    /// Largest WebSocket message (and frame) a client may send, in bytes; a larger one
    /// closes the socket with 1009. Unset: `CASEFILE_MAX_BODY_BYTES`.
    #[arg(long, env = "CASEFILE_WS_MAX_MESSAGE_BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_max_message_bytes: Option<u64>,

    /// Operations (`subscribe`, legacy `start`) one WebSocket may start a second; the
    /// ones over it answer `RATE_LIMITED` and the socket stays open. 0 turns it off.
    #[arg(long, env = "CASEFILE_WS_OPERATIONS_PER_SECOND", default_value_t = DEFAULT_WS_OPERATIONS_PER_SECOND)]
    pub ws_operations_per_second: u32,

    /// Proxies whose `X-Forwarded-For` is believed: comma-separated CIDRs or addresses
    /// (`10.0.0.0/8,192.0.2.7`). Unset: the client is always the TCP peer.
    #[arg(long, env = "CASEFILE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// Origins browsers may call the API from: comma-separated, exact
    /// (`https://soc.example.com`). Unset: no CORS headers, same origin only.
    #[arg(long, env = "CASEFILE_CORS_ORIGINS", default_value = "")]
    pub cors_origins: CorsOrigins,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            auth_failures_per_minute: DEFAULT_AUTH_FAILURES_PER_MINUTE,
            ws_max_connections_per_token: DEFAULT_WS_MAX_CONNECTIONS_PER_TOKEN,
            ws_max_message_bytes: None,
            ws_operations_per_second: DEFAULT_WS_OPERATIONS_PER_SECOND,
            trusted_proxies: TrustedProxies::default(),
            cors_origins: CorsOrigins::default(),
        }
    }
}

/// The networks of the proxies in front of casefile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => entry.parse::<IpAddr>().map(|a| IpNet::from(a.to_canonical())).map_err(
                    |_| {
                        format!(
                            "`{entry}` is neither a CIDR (like 10.0.0.0/8 or fd00::/8) nor an IP address"
                        )
                    },
                )?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&nets.join(","))
    }
}

/// The exact origins (`scheme://host[:port]`) allowed to call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(pub Vec<String>);

impl CorsOrigins {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for CorsOrigins {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut origins = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Err("`*` is not accepted: list the origins, like https://soc.example.com"
                    .to_owned());
            }
            let origin = url::Url::parse(entry)
                .ok()
                .filter(|url| matches!(url.scheme(), "http" | "https"))
                .map(|url| url.origin().ascii_serialization());
            match origin {
                Some(origin) if origin == entry => origins.push(origin),
                Some(origin) => {
                    return Err(format!(
                        "`{entry}` is not an origin as browsers send it: write `{origin}` (scheme, host and port, no path or trailing slash)"
                    ));
                }
                None => {
                    return Err(format!(
                        "`{entry}` is not an origin: write one like https://soc.example.com"
                    ));
                }
            }
        }
        Ok(CorsOrigins(origins))
    }
}

impl fmt::Display for CorsOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_read_cidrs_and_bare_addresses() {
        let proxies: TrustedProxies = " 10.0.0.0/8, 192.0.2.7 ,fd00::/8".parse().expect("valid");
        assert_eq!(proxies.0.len(), 3);
        assert!(proxies.contains("10.1.2.3".parse().expect("ip")));
        assert!(proxies.contains("192.0.2.7".parse().expect("ip")));
        assert!(!proxies.contains("192.0.2.8".parse().expect("ip")));
        assert!(proxies.contains("fd12::1".parse().expect("ip")));
        // An IPv4 peer seen on a dual-stack socket.
        assert!(proxies.contains("::ffff:10.0.0.1".parse().expect("ip")));
        assert!("".parse::<TrustedProxies>().expect("empty").is_empty());
    }

    #[test]
    fn a_bad_trusted_proxy_is_refused_with_the_entry_named() {
        let error = "10.0.0.0/8,10.0.0.0/33".parse::<TrustedProxies>().expect_err("bad");
        assert!(error.contains("`10.0.0.0/33`"), "{error}");
        let error = "proxy.example.com".parse::<TrustedProxies>().expect_err("bad");
        assert!(error.contains("`proxy.example.com`"), "{error}");
    }

    #[test]
    fn cors_origins_must_be_exact_origins() {
        let origins: CorsOrigins =
            "https://soc.example.com, http://localhost:5173".parse().expect("valid");
        assert_eq!(origins.0, ["https://soc.example.com", "http://localhost:5173"]);
        let error = "https://soc.example.com/".parse::<CorsOrigins>().expect_err("a slash");
        assert!(error.contains("write `https://soc.example.com`"), "{error}");
        assert!("https://soc.example.com/app".parse::<CorsOrigins>().is_err());
        assert!("*".parse::<CorsOrigins>().is_err());
        assert!("soc.example.com".parse::<CorsOrigins>().is_err());
        assert!("ftp://soc.example.com".parse::<CorsOrigins>().is_err());
        assert!("".parse::<CorsOrigins>().expect("empty").is_empty());
    }
}
