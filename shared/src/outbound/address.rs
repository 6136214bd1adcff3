//! Which addresses the hub may call: public unicast only. Partners and sites choose the
//! URLs the hub calls, so the client itself refuses loopback, private, link-local
//! (cloud metadata included), shared, multicast, documentation and reserved addresses,
//! after DNS resolution as well as for literal addresses (no SSRF).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address may not be called, or `None` when it is public.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refusal_v4(v4),
            None => refusal_v6(v6),
        },
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match () {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_private() => "a private address",
        _ if ip.is_link_local() => "a link-local address (cloud metadata lives there)",
        _ if ip.is_unspecified() || a == 0 => "an unspecified address",
        _ if ip.is_broadcast() || ip.is_multicast() => "a broadcast or multicast address",
        _ if a == 100 && (64..128).contains(&b) => "a shared (carrier-grade NAT) address",
        _ if a == 192 && b == 0 && c == 0 => "an IETF protocol address",
        _ if ip.is_documentation() => "a documentation address",
        _ if a == 198 && (b == 18 || b == 19) => "a benchmarking address",
        _ if a >= 240 => "a reserved address",
        _ => return None,
    })
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match () {
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_multicast() => "a multicast address",
        // fc00::/7 holds AWS's IPv6 metadata address fd00:ec2::254.
        _ if (first & 0xfe00) == 0xfc00 => "a unique-local (private) address",
        _ if (first & 0xffc0) == 0xfe80 => "a link-local address",
        _ if first == 0x2001 && ip.segments()[1] == 0x0db8 => "a documentation address",
        _ if first == 0x0064 && ip.segments()[1] == 0xff9b => "a NAT64 address",
        _ if ip.segments()[..6] == [0, 0, 0, 0, 0, 0] => "an IPv4-compatible address",
        _ => return None,
    })
}

/// The first refused address among a host's resolved addresses.
pub fn first_refused(addrs: &[SocketAddr]) -> Option<(IpAddr, &'static str)> {
    addrs
        .iter()
        .find_map(|a| refusal(a.ip()).map(|why| (a.ip(), why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_may_be_called() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.8",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "192.0.0.170",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::7f00:1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(refusal(ip).is_some(), "{refused} must be refused");
        }
        for public in ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111"] {
            let ip: IpAddr = public.parse().unwrap();
            assert_eq!(refusal(ip), None, "{public} is public");
        }
    }
}
