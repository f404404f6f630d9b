//! The client address of a request: the socket peer, unless the peer is a trusted proxy
//! (`server.trusted_proxies`); then `X-Forwarded-For`, read from the right past every trusted
//! hop, names it.
//!
//! Login backoff, the per-client upload limit, Cedar's `context.source_ip` and the `source` of
//! logged refusals all key on this address, so a client must not be able to choose it: a
//! forwarded address counts only when a trusted proxy wrote it, and only the hops to the right
//! of the first untrusted one were written by trusted proxies.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{Extensions, HeaderMap};

/// The header a reverse proxy appends the address of its own client to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";
/// Most `X-Forwarded-For` hops read from the right; a longer chain of trusted hops is not
/// believed, and the peer is the client.
pub const FORWARDED_HOPS_MAX: usize = 32;

/// Why an entry of `server.trusted_proxies` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{0}` is not an address range like `10.0.0.0/8` or `2001:db8::/32`")]
    Syntax(String),
    #[error("`{0}` has a prefix longer than its address")]
    Prefix(String),
    #[error("`{text}` has bits set past its prefix; write `{network}`")]
    HostBits { text: String, network: String },
    #[error("`{0}` trusts every address, so any client could choose its own; name the proxies' addresses")]
    Everything(String),
}

/// An address range, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses a range. Bits past the prefix must be zero, and `/0` is refused.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let syntax = || CidrError::Syntax(airlock_model::echo::echo(text));
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| syntax())?;
        let bits = max_prefix(address);
        let prefix = match prefix {
            None => bits,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| syntax())?
            }
            Some(_) => return Err(syntax()),
        };
        if prefix > bits {
            return Err(CidrError::Prefix(airlock_model::echo::echo(text)));
        }
        if prefix == 0 {
            return Err(CidrError::Everything(airlock_model::echo::echo(text)));
        }
        let cidr = Cidr { network: address, prefix };
        if masked(address, prefix) != address {
            let network = Cidr { network: masked(address, prefix), prefix };
            return Err(CidrError::HostBits { text: airlock_model::echo::echo(text), network: network.to_string() });
        }
        Ok(cidr)
    }

    /// Whether `addr` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        addr.is_ipv4() == self.network.is_ipv4() && masked(addr, self.prefix) == self.network
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// `addr` with every bit past `prefix` cleared.
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32u32.saturating_sub(u32::from(prefix))).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128u32.saturating_sub(u32::from(prefix))).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`server.trusted_proxies`); none by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(ranges: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(ranges)
    }

    /// The ranges, as configured.
    pub fn ranges(&self) -> &[Cidr] {
        &self.0
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(addr))
    }
}

/// The client address of a request from `peer` carrying `headers`.
///
/// 1. A peer that is not a trusted proxy is the client; its `X-Forwarded-For` is ignored.
/// 2. Otherwise the hops of every `X-Forwarded-For` field, in order, are read from the right:
///    each hop a trusted proxy is skipped, and the first one that is not is the client.
/// 3. A hop that is not an address (or a field that is not text, or more than
///    [`FORWARDED_HOPS_MAX`] trusted hops) means the chain cannot be read: the peer is the client.
/// 4. When every hop is trusted, the leftmost one is the client; without the header, the peer.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    // 1.
    let peer = peer.to_canonical();
    if !trusted.trusts(peer) {
        return peer;
    }
    // 2.
    let mut client = peer;
    let mut read = 0usize;
    for field in headers.get_all(FORWARDED_FOR).iter().rev() {
        let Ok(text) = field.to_str() else { return peer };
        for hop in text.rsplit(',') {
            // 3.
            read = read.saturating_add(1);
            if read > FORWARDED_HOPS_MAX {
                return peer;
            }
            let Some(addr) = parse_hop(hop.trim()) else { return peer };
            if !trusted.trusts(addr) {
                return addr;
            }
            // 4.
            client = addr;
        }
    }
    client
}

/// One `X-Forwarded-For` hop: an address, optionally with a port (`[::1]:443`, `10.0.0.1:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(addr) = hop.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let bracketed = hop.strip_prefix('[')?.strip_suffix(']')?;
    bracketed.parse::<std::net::Ipv6Addr>().ok().map(|a| IpAddr::V6(a).to_canonical())
}

/// The client address [`layer`] worked out, in a request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Middleware: works out the client address of every request once, from its socket peer and
/// headers, and leaves it in the request's extensions for [`of`].
pub async fn layer(State(trusted): State<Arc<TrustedProxies>>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = resolve(peer, request.headers(), &trusted);
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

/// The client address of a request, as text: what [`layer`] worked out, else the socket peer,
/// else `local` (a request handed to the router in process, with no socket).
pub fn of(extensions: &Extensions) -> String {
    if let Some(client) = extensions.get::<ClientAddr>() {
        return client.0.to_string();
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_canonical().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn trusted(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::new(ranges.iter().map(|r| Cidr::parse(r).unwrap()).collect())
    }

    /// The client of a request from `peer` with these `X-Forwarded-For` fields.
    fn check(ranges: &[&str], peer: &str, fields: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(FORWARDED_FOR, http::HeaderValue::from_bytes(field.as_bytes()).unwrap());
        }
        resolve(peer.parse().unwrap(), &headers, &trusted(ranges)).to_string()
    }

    #[test]
    fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        assert_eq!(check(&[], "203.0.113.7", &["10.1.2.3"]), "203.0.113.7");
        assert_eq!(check(&["10.0.0.0/8"], "203.0.113.7", &["10.1.2.3"]), "203.0.113.7");
        assert_eq!(check(&["10.0.0.0/8"], "203.0.113.7", &["198.51.100.1, 10.0.0.1"]), "203.0.113.7");
    }

    #[test]
    fn a_trusted_proxy_names_its_client() {
        assert_eq!(check(&["10.0.0.0/8"], "10.0.0.1", &["203.0.113.7"]), "203.0.113.7");
        assert_eq!(check(&["10.0.0.0/8"], "10.0.0.1", &[]), "10.0.0.1", "no header: the proxy itself");
        assert_eq!(check(&["10.0.0.0/8"], "10.0.0.1", &[" 203.0.113.7 "]), "203.0.113.7");
    }

    #[test]
    fn chains_are_read_from_the_right_past_trusted_hops() {
        let proxies = ["10.0.0.0/8", "192.168.1.0/24"];
        // The client wrote the left part itself; only what trusted hops appended counts.
        assert_eq!(check(&proxies, "10.0.0.1", &["1.1.1.1, 203.0.113.7, 192.168.1.5"]), "203.0.113.7");
        assert_eq!(check(&proxies, "10.0.0.1", &["10.9.9.9, 203.0.113.7"]), "203.0.113.7");
        // Two fields are one list, in order.
        assert_eq!(check(&proxies, "10.0.0.1", &["1.1.1.1, 203.0.113.7", "192.168.1.5"]), "203.0.113.7");
        // Every hop trusted: the leftmost.
        assert_eq!(check(&proxies, "10.0.0.1", &["192.168.1.9, 10.2.2.2"]), "192.168.1.9");
        // Garbage left of the client is never reached.
        assert_eq!(check(&proxies, "10.0.0.1", &["not-an-address, 203.0.113.7"]), "203.0.113.7");
    }

    #[test]
    fn ipv6_peers_hops_and_ranges() {
        assert_eq!(check(&["2001:db8::/32"], "2001:db8::1", &["2001:db8:1::5, 2600::1"]), "2600::1");
        assert_eq!(check(&["2001:db8::/32"], "2001:db8::1", &["[2600::1]:443"]), "2600::1");
        assert_eq!(check(&["2001:db8::/32"], "2001:db8::1", &["[2600::2]"]), "2600::2");
        assert_eq!(check(&["2001:db8::/32"], "2001:db9::1", &["2600::1"]), "2001:db9::1");
        // An IPv4 client seen through a dual-stack socket is its IPv4 address.
        assert_eq!(check(&["10.0.0.0/8"], "::ffff:10.0.0.1", &["::ffff:203.0.113.7"]), "203.0.113.7");
        assert_eq!(check(&[], "::ffff:203.0.113.7", &[]), "203.0.113.7");
        assert_eq!(check(&["10.0.0.0/8"], "10.0.0.1", &["203.0.113.7:5000"]), "203.0.113.7");
    }

    #[test]
    fn garbage_from_a_trusted_proxy_leaves_the_peer() {
        let proxies = ["10.0.0.0/8"];
        for field in ["", "unknown", "203.0.113.7,", "203.0.113.7, ,10.0.0.2", "300.1.1.1", "[203.0.113.7]", "::1]"] {
            assert_eq!(check(&proxies, "10.0.0.1", &[field]), "10.0.0.1", "{field:?}");
        }
        assert_eq!(check(&proxies, "10.0.0.1", &["203.0.113.7", "bad"]), "10.0.0.1");
        let mut headers = HeaderMap::new();
        headers.insert(FORWARDED_FOR, http::HeaderValue::from_bytes(b"203.0.113.\xff").unwrap());
        assert_eq!(resolve("10.0.0.1".parse().unwrap(), &headers, &trusted(&proxies)).to_string(), "10.0.0.1");
        let long = vec!["10.0.0.2"; FORWARDED_HOPS_MAX + 1].join(",");
        assert_eq!(check(&proxies, "10.0.0.1", &[&format!("203.0.113.7,{long}")]), "10.0.0.1");
        let longest = vec!["10.0.0.2"; FORWARDED_HOPS_MAX - 1].join(",");
        assert_eq!(check(&proxies, "10.0.0.1", &[&format!("203.0.113.7,{longest}")]), "203.0.113.7");
    }

    #[test]
    fn ranges_parse_strictly() {
        let ok = |t: &str| Cidr::parse(t).unwrap().to_string();
        assert_eq!(ok("10.0.0.0/8"), "10.0.0.0/8");
        assert_eq!(ok("10.0.0.7"), "10.0.0.7/32");
        assert_eq!(ok("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(ok("::1"), "::1/128");
        let err = |t: &str| Cidr::parse(t).unwrap_err().to_string();
        assert_eq!(err("10.0.0.1/8"), "`10.0.0.1/8` has bits set past its prefix; write `10.0.0.0/8`");
        assert_eq!(err("10.0.0.0/33"), "`10.0.0.0/33` has a prefix longer than its address");
        assert!(err("0.0.0.0/0").contains("trusts every address"));
        assert!(err("::/0").contains("trusts every address"));
        for bad in ["", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/08x", "10.0.0/8", "proxy.internal", "10.0.0.0/8/8"] {
            assert!(err(bad).contains("is not an address range"), "{bad}: {}", err(bad));
        }
        let range = Cidr::parse("192.168.4.0/22").unwrap();
        assert!(range.contains("192.168.7.255".parse().unwrap()));
        assert!(!range.contains("192.168.8.0".parse().unwrap()));
        assert!(range.contains("::ffff:192.168.5.1".parse().unwrap()));
        assert!(!Cidr::parse("::/1").unwrap().contains("10.0.0.1".parse().unwrap()), "families never mix");
    }
}
