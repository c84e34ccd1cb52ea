//! The PROXY protocol version 2 header (HAProxy's proxy-protocol.txt, section 2.2):
//! the binary block a connection's initiator sends first, before any other byte, to
//! tell the server whose connection it relays.
//!
//! Layout: the 12-byte signature, one byte version (high nibble, 2) and command (low
//! nibble: 0 LOCAL, 1 PROXY), one byte address family (high nibble: 1 INET, 2 INET6)
//! and transport (low nibble: 1 STREAM), a big-endian u16 length of what follows, then
//! the addresses: source address, destination address, source port, destination port.
//! Pure: building a header never fails and needs no I/O.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Version 2, command PROXY: the connection is relayed for the addresses that follow.
const VERSION_PROXY: u8 = 0x21;
/// Version 2, command LOCAL: the initiator speaks for itself; addresses are ignored.
const VERSION_LOCAL: u8 = 0x20;
/// TCP over IPv4.
const TCP4: u8 = 0x11;
/// TCP over IPv6.
const TCP6: u8 = 0x21;
/// Family and transport UNSPEC (used with LOCAL).
const UNSPEC: u8 = 0x00;

/// The two ends of a client's connection to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyAddrs {
    /// The client's address and port.
    pub source: SocketAddr,
    /// The address and port the client connected to (the proxy's listener).
    pub destination: SocketAddr,
}

/// The header for a connection relayed for `addrs`: TCP4 when both ends are IPv4 (or
/// IPv4 mapped into IPv6, as a dual-stack listener reports them), else TCP6 with any
/// IPv4 end mapped into IPv6 (the header has one family for both).
pub fn encode(addrs: &ProxyAddrs) -> Vec<u8> {
    let (src, dst) = (addrs.source, addrs.destination);
    let ports = [src.port().to_be_bytes(), dst.port().to_be_bytes()].concat();
    match (v4_of(src.ip()), v4_of(dst.ip())) {
        (Some(s), Some(d)) => header(
            VERSION_PROXY,
            TCP4,
            &[&s.octets()[..], &d.octets(), &ports].concat(),
        ),
        _ => header(
            VERSION_PROXY,
            TCP6,
            &[
                &v6_of(src.ip()).octets()[..],
                &v6_of(dst.ip()).octets(),
                &ports,
            ]
            .concat(),
        ),
    }
}

/// The LOCAL header: the connection is the initiator's own (a health check); the
/// server uses the real peer address.
pub fn encode_local() -> Vec<u8> {
    header(VERSION_LOCAL, UNSPEC, &[])
}

fn header(version_command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    // The body is at most 36 bytes (two IPv6 addresses and two ports).
    let len = u16::try_from(body.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&SIGNATURE);
    out.push(version_command);
    out.push(family);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn v4_of(ip: IpAddr) -> Option<std::net::Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

fn v6_of(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(source: &str, destination: &str) -> ProxyAddrs {
        ProxyAddrs {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        }
    }

    /// The example of the spec's byte layout, written out by hand.
    #[test]
    fn tcp4_byte_by_byte() {
        let h = encode(&addrs("127.0.0.2:51000", "127.0.0.1:6033"));
        let expected: Vec<u8> = [
            &SIGNATURE[..],
            &[0x21, 0x11, 0x00, 12],
            &[127, 0, 0, 2],
            &[127, 0, 0, 1],
            &51000u16.to_be_bytes(),
            &6033u16.to_be_bytes(),
        ]
        .concat();
        assert_eq!(h, expected);
        assert_eq!(h.len(), 28);
        assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
    }

    #[test]
    fn tcp6_carries_both_addresses_and_ports() {
        let h = encode(&addrs("[2001:db8::7]:40000", "[::1]:6033"));
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0x00, 36]);
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "::1".parse().unwrap();
        assert_eq!(&h[16..32], &src.octets());
        assert_eq!(&h[32..48], &dst.octets());
        assert_eq!(&h[48..50], &40000u16.to_be_bytes());
        assert_eq!(&h[50..52], &6033u16.to_be_bytes());
    }

    #[test]
    fn mapped_ipv4_is_sent_as_tcp4_and_mixed_families_as_tcp6() {
        let h = encode(&addrs("[::ffff:10.0.0.9]:1", "[::ffff:10.0.0.1]:2"));
        assert_eq!(&h[12..16], &[0x21, 0x11, 0x00, 12]);
        assert_eq!(&h[16..20], &[10, 0, 0, 9]);
        let h = encode(&addrs("10.0.0.9:1", "[fe80::1]:2"));
        assert_eq!(&h[12..16], &[0x21, 0x21, 0x00, 36]);
        assert_eq!(
            &h[16..32],
            &"::ffff:10.0.0.9".parse::<Ipv6Addr>().unwrap().octets()
        );
    }

    #[test]
    fn local_has_no_addresses() {
        let h = encode_local();
        assert_eq!(h.len(), 16);
        assert_eq!(&h[..12], &SIGNATURE);
        assert_eq!(&h[12..], &[0x20, 0x00, 0x00, 0x00]);
    }
}
