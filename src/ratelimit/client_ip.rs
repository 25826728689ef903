//! The client's IP address: the socket peer, or — only when the peer is a trusted proxy
//! (`TRUSTED_PROXIES`) — the rightmost address of `X-Forwarded-For` that is not itself a
//! trusted proxy. Leftmost entries are written by the client and can be forged; each trusted
//! proxy appends the address it saw, so the rightmost untrusted one is the real client.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Parses `TRUSTED_PROXIES`: comma-separated IPs or CIDRs.
pub fn parse_trusted(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{p}` is not an IP address or CIDR"))
        })
        .collect()
}

/// The client address of a request from `peer` carrying `forwarded_for` (every
/// `X-Forwarded-For` value, in order).
pub fn resolve<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops = forwarded_for.rev().flat_map(|v| v.rsplit(','));
    for hop in hops {
        // A malformed entry ends the chain: what lies left of it cannot be trusted.
        let Some(ip) = parse_hop(hop.trim()) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

fn parse_hop(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_trusted() {
        let trusted = parse_trusted("10.0.0.0/8").expect("valid");
        let got = resolve(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let trusted = parse_trusted("10.0.0.0/8, 192.168.1.1").expect("valid");
        let xff = ["6.6.6.6, 198.51.100.7", "192.168.1.1"];
        assert_eq!(
            resolve(ip("10.1.2.3"), xff.into_iter(), &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost_and_garbage_stops_the_walk() {
        let trusted = parse_trusted("10.0.0.0/8").expect("valid");
        let all = ["10.0.0.5, 10.0.0.6"];
        assert_eq!(
            resolve(ip("10.0.0.1"), all.into_iter(), &trusted),
            ip("10.0.0.5")
        );
        let garbage = ["1.1.1.1, nonsense, 10.0.0.7"];
        assert_eq!(
            resolve(ip("10.0.0.1"), garbage.into_iter(), &trusted),
            ip("10.0.0.7")
        );
        let ported = ["[2001:db8::1]:443"];
        assert_eq!(
            resolve(ip("10.0.0.1"), ported.into_iter(), &trusted),
            ip("2001:db8::1")
        );
    }

    proptest::proptest! {
        #[test]
        fn the_answer_is_the_peer_or_an_address_from_the_header(
            peer in proptest::prelude::any::<[u8; 4]>(),
            hops in proptest::collection::vec(proptest::prelude::any::<[u8; 4]>(), 0..6),
            trust_peer in proptest::prelude::any::<bool>(),
        ) {
            let peer = IpAddr::from(peer);
            let header = hops.iter().map(|h| IpAddr::from(*h).to_string()).collect::<Vec<_>>().join(", ");
            let trusted = if trust_peer { vec![IpNet::from(peer)] } else { Vec::new() };
            let got = resolve(peer, [header.as_str()].into_iter(), &trusted);
            if trust_peer {
                proptest::prop_assert!(got == peer || hops.iter().any(|h| IpAddr::from(*h) == got));
            } else {
                proptest::prop_assert_eq!(got, peer);
            }
        }
    }

    #[test]
    fn bad_proxy_lists_are_refused() {
        assert!(parse_trusted("10.0.0.0/33").is_err());
        assert!(parse_trusted("proxy.local").is_err());
        assert_eq!(parse_trusted(" ").map(|v| v.len()), Ok(0));
    }
}
