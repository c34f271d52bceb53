//! Who the client is: the TCP peer, or, when that peer is a reverse proxy the operator
//! trusts (`--trusted-proxy`), the address the proxy says it received the request from
//! (RFC 7239 `Forwarded`, else `X-Forwarded-For`), and whether the client reached the
//! proxy over TLS (which decides `Strict-Transport-Security`).
//!
//! Forwarding headers are written by whoever sends them: a client can put any address in
//! them. They are read only when the TCP peer is in a trusted range, and then from the
//! right: each trusted proxy appends the address it saw, so the right-most address that
//! is not itself a trusted proxy is the first one nobody we trust could have been fooled
//! about. What a client wrote to the left of it is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// `Strict-Transport-Security` sent on answers to requests that came over TLS: one
/// year. No `includeSubDomains`: the server cannot know what else lives under its name.
pub const HSTS: &str = "max-age=31536000";

/// A `--trusted-proxy` value that is not an address or a CIDR range.
#[derive(Debug, thiserror::Error)]
#[error("not an IP address or CIDR range: {0:?}")]
pub struct ProxyRangeError(pub String);

/// The address ranges whose forwarding headers are believed (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// The given ranges.
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self(ranges)
    }

    /// Parses ranges separated by commas or white space (`10.0.0.0/8, ::1`); a bare
    /// address is a range of one.
    pub fn parse(text: &str) -> Result<Self, ProxyRangeError> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(parse_range)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is in one of the ranges (an IPv4 address written as IPv6,
    /// `::ffff:a.b.c.d`, counts as the IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// One range of [`TrustedProxies::parse`].
pub fn parse_range(text: &str) -> Result<IpNet, ProxyRangeError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| ProxyRangeError(text.to_owned()))
}

/// The client as the server sees it, put into each request's extensions by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    pub ip: IpAddr,
    /// Whether a trusted proxy says the client spoke TLS to it.
    pub tls: bool,
}

/// One hop of a forwarding header: the address a proxy received the request from (None
/// when it wrote `unknown`, an obfuscated name or something unreadable), and the scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    from: Option<IpAddr>,
    https: Option<bool>,
}

impl ClientAddr {
    /// The client of a request that arrived from `peer` with `headers`.
    pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> Self {
        let peer = peer.to_canonical();
        let mut client = Self {
            ip: peer,
            tls: false,
        };
        if !proxies.contains(peer) {
            return client;
        }
        let hops = match joined(headers, "forwarded") {
            Some(text) => parse_forwarded(&text),
            None => {
                let https = joined(headers, "x-forwarded-proto")
                    .and_then(|text| text.rsplit(',').next().map(is_https));
                joined(headers, "x-forwarded-for")
                    .map(|text| {
                        text.split(',')
                            .map(|node| Hop {
                                from: parse_node(node.trim()),
                                https,
                            })
                            .collect()
                    })
                    .unwrap_or_else(|| vec![Hop { from: None, https }])
            }
        };
        // From the right: stop at the first address no trusted proxy stands for. An
        // unreadable hop stops the walk too, leaving the last proxy that was trusted.
        for hop in hops.iter().rev() {
            if let Some(https) = hop.https {
                client.tls = https;
            }
            match hop.from {
                Some(ip) => {
                    client.ip = ip.to_canonical();
                    if !proxies.contains(client.ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// Every value of header `name`, joined by commas as RFC 9110 allows (None when absent
/// or not visible ASCII).
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Option<_>>()?;
    (!values.is_empty()).then(|| values.join(","))
}

fn is_https(proto: &str) -> bool {
    proto.trim().eq_ignore_ascii_case("https")
}

/// The hops of a `Forwarded` value (RFC 7239 section 4): elements separated by commas,
/// pairs by semicolons, values tokens or quoted strings. A malformed element is a hop
/// with no address.
fn parse_forwarded(text: &str) -> Vec<Hop> {
    split_outside_quotes(text, ',')
        .into_iter()
        .map(|element| {
            let mut hop = Hop {
                from: None,
                https: None,
            };
            for pair in split_outside_quotes(element, ';') {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = unquote(value.trim());
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.from = parse_node(&value),
                    "proto" => hop.https = Some(is_https(&value)),
                    _ => {}
                }
            }
            hop
        })
        .collect()
}

/// Splits at `sep` where it is not inside a quoted string.
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A quoted string's content (backslash escapes undone), or the token as it is.
fn unquote(value: &str) -> String {
    match value
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// An address as a forwarding header writes it: `192.0.2.1`, `192.0.2.1:4711`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711` or a bare `2001:db8::1`. None for `unknown`,
/// obfuscated names (`_hidden`) and anything else.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return ip.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    node.parse::<SocketAddr>().ok().map(|addr| addr.ip())
}

/// Middleware: puts the request's [`ClientAddr`] into its extensions (when the server
/// runs with connect info), and marks answers to TLS clients with
/// `Strict-Transport-Security`.
pub async fn resolve(
    State(proxies): State<std::sync::Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| ClientAddr::resolve(peer.ip(), request.headers(), &proxies));
    if let Some(client) = client {
        request.extensions_mut().insert(client);
    }
    let mut response = next.run(request).await;
    if client.is_some_and(|c| c.tls) {
        response
            .headers_mut()
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(HSTS));
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn resolve(peer: &str, pairs: &[(&'static str, &str)], trusted: &str) -> ClientAddr {
        ClientAddr::resolve(
            ip(peer),
            &headers(pairs),
            &TrustedProxies::parse(trusted).unwrap(),
        )
    }

    #[test]
    fn ranges_parse_with_bare_addresses_and_refuse_garbage() {
        let p = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7 2001:db8::/32").unwrap();
        assert!(p.contains(ip("10.1.2.3")));
        assert!(p.contains(ip("192.0.2.7")));
        assert!(!p.contains(ip("192.0.2.8")));
        assert!(p.contains(ip("2001:db8::5")));
        assert!(p.contains(ip("::ffff:10.0.0.1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_send() {
        let c = resolve(
            "198.51.100.9",
            &[
                ("x-forwarded-for", "203.0.113.1"),
                ("forwarded", "for=203.0.113.2;proto=https"),
                ("x-forwarded-proto", "https"),
            ],
            "127.0.0.1/32",
        );
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("198.51.100.9"),
                tls: false
            }
        );
    }

    #[test]
    fn the_right_most_untrusted_forwarded_address_wins() {
        // The client wrote 1.1.1.1 itself; nginx appended what it saw.
        let c = resolve(
            "127.0.0.1",
            &[
                ("x-forwarded-for", "1.1.1.1, 203.0.113.5"),
                ("x-forwarded-proto", "https"),
            ],
            "127.0.0.1/32",
        );
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("203.0.113.5"),
                tls: true
            }
        );
        // Two trusted proxies in a row.
        let c = resolve(
            "10.0.0.2",
            &[("x-forwarded-for", "1.1.1.1, 203.0.113.5, 10.0.0.1")],
            "10.0.0.0/24",
        );
        assert_eq!(c.ip, ip("203.0.113.5"));
        assert!(!c.tls);
        // Only proxies: the left-most of them.
        let c = resolve(
            "10.0.0.2",
            &[("x-forwarded-for", "10.0.0.3")],
            "10.0.0.0/24",
        );
        assert_eq!(c.ip, ip("10.0.0.3"));
        // No header: the proxy itself.
        assert_eq!(resolve("10.0.0.2", &[], "10.0.0.0/24").ip, ip("10.0.0.2"));
        // Several header lines are one list.
        let c = resolve(
            "127.0.0.1",
            &[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-for", "203.0.113.6"),
            ],
            "127.0.0.1",
        );
        assert_eq!(c.ip, ip("203.0.113.6"));
    }

    #[test]
    fn forwarded_is_read_as_rfc_7239_writes_it() {
        let c = resolve(
            "127.0.0.1",
            &[(
                "forwarded",
                "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https;by=_nginx, for=10.0.0.1;proto=http",
            )],
            "127.0.0.1, 10.0.0.0/8",
        );
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("2001:db8::7"),
                tls: true
            }
        );
        let c = resolve(
            "127.0.0.1",
            &[("forwarded", "For=\"192.0.2.60:8080\";Proto=HTTPS")],
            "127.0.0.1",
        );
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("192.0.2.60"),
                tls: true
            }
        );
        // Forwarded wins over X-Forwarded-For when both are there.
        let c = resolve(
            "127.0.0.1",
            &[
                ("forwarded", "for=192.0.2.61"),
                ("x-forwarded-for", "192.0.2.62"),
            ],
            "127.0.0.1",
        );
        assert_eq!(c.ip, ip("192.0.2.61"));
    }

    #[test]
    fn unknown_or_unreadable_hops_leave_the_last_trusted_proxy() {
        for value in [
            "for=unknown",
            "for=_hidden",
            "for=\"not an address\"",
            "garbage",
        ] {
            let c = resolve("127.0.0.1", &[("forwarded", value)], "127.0.0.1");
            assert_eq!(c.ip, ip("127.0.0.1"), "{value}");
        }
        let c = resolve(
            "127.0.0.1",
            &[("x-forwarded-for", "203.0.113.9, nonsense")],
            "127.0.0.1",
        );
        assert_eq!(c.ip, ip("127.0.0.1"));
        assert_eq!(parse_node("[2001:db8::1]x"), None);
        assert_eq!(parse_node("192.0.2.1:80"), Some(ip("192.0.2.1")));
        assert_eq!(parse_node("2001:db8::1"), Some(ip("2001:db8::1")));
    }
}
