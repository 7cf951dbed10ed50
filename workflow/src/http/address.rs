//! The SSRF address rule: [`is_public`] decides which IPv4/IPv6 addresses the `http` node may
//! connect to, and [`PublicOnlyResolver`] applies it to DNS answers so that the client connects
//! only to addresses that passed (see [`super`] for the whole destination policy).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is publicly routable, i.e. a destination the `http` node may connect to when
/// [`HttpSettings::allow_private_networks`] is off.
///
/// Hand-written because `IpAddr::is_global` is still unstable (rust-lang/rust#27709). It
/// errs on the side of refusing: a few special-use addresses IANA lists as globally
/// reachable (e.g. the `192.0.0.9` PCP anycast) are refused too, which no real integration
/// needs, while IPv6 is accepted only inside the global unicast block `2000::/3`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // 0.0.0.0/8 "this network"
        || a == 10 // 10/8 private
        || a == 100 && b & 0xc0 == 64 // 100.64/10 carrier-grade NAT
        || a == 127 // 127/8 loopback
        || a == 169 && b == 254 // 169.254/16 link-local, cloud metadata
        || a == 172 && b & 0xf0 == 16 // 172.16/12 private
        || a == 192 && b == 0 && c == 0 // 192.0.0/24 IETF protocol assignments
        || a == 192 && b == 0 && c == 2 // 192.0.2/24 TEST-NET-1
        || a == 192 && b == 88 && c == 99 // 192.88.99/24 deprecated 6to4 relay anycast
        || a == 192 && b == 168 // 192.168/16 private
        || a == 198 && b & 0xfe == 18 // 198.18/15 benchmarking
        || a == 198 && b == 51 && c == 100 // 198.51.100/24 TEST-NET-2
        || a == 203 && b == 0 && c == 113 // 203.0.113/24 TEST-NET-3
        || a >= 224; // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // Addresses that carry an IPv4 address are as reachable as that address: a NAT64 gateway
    // or 6to4 relay would forward the connection to it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4); // ::ffff:0:0/96
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded(hi, lo)), // NAT64
        [0x2002, hi, lo, ..] => is_public_v4(embedded(hi, lo)),               // 6to4
        _ => {
            // Accept only the global unicast block rather than list every other special
            // range: this refuses ::, ::1, IPv4-compatible ::a.b.c.d, fc00::/7, fe80::/10,
            // fec0::/10, ff00::/8, 100::/64 and the local-use NAT64 64:ff9b:1::/48 at once.
            let global_unicast = s[0] & 0xe000 == 0x2000;
            let ietf_protocol = s[0] == 0x2001 && s[1] < 0x0200; // 2001::/23, incl. Teredo
            // 2001:db8::/32 and 3fff::/20.
            let documentation = s[0] == 0x2001 && s[1] == 0x0db8 || s[0] == 0x3fff && s[1] < 0x1000;
            global_unicast && !ietf_protocol && !documentation
        }
    }
}

/// Raised by [`PublicOnlyResolver`] when a name has no public address; recognised in
/// [`super::caller`]'s error mapping to report a refusal rather than a transport failure.
#[derive(Debug, thiserror::Error)]
#[error(
    "host `{0}` has no publicly routable address; private and internal networks are not allowed"
)]
pub(super) struct NoPublicAddress(String);

/// A DNS resolver keeping only public addresses ([`is_public`]).
///
/// The connection is made to exactly what this returns, so the check cannot be raced by a
/// second, different DNS answer. The resolved addresses are not named in the error: they
/// would tell a workflow author about the internal network.
#[derive(Debug)]
pub(super) struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port (or the scheme's default).
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(NoPublicAddress(host).into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_publicly_routable_addresses_count_as_public() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",  // just below CGNAT
            "100.128.0.0",     // just above CGNAT
            "172.15.255.255",  // just below 172.16/12
            "172.32.0.0",      // just above 172.16/12
            "192.169.0.1",     // just above 192.168/16
            "198.20.0.1",      // just above 198.18/15
            "223.255.255.255", // last unicast before multicast
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",   // IPv4-mapped public
            "64:ff9b::808:808", // NAT64 of 8.8.8.8
            "2002:808:808::1",  // 6to4 of 8.8.8.8
            "2001:4860:4860::8888",
        ];
        let private = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254", // cloud metadata
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1", // deprecated IPv4-compatible
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "64:ff9b::a00:1",     // NAT64 of 10.0.0.1
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b:1::808:808", // local-use NAT64
            "2002:a00:1::1",      // 6to4 of 10.0.0.1
            "2001:db8::1",
            "2001:0:4136:e378::1", // Teredo
            "3fff::1",
            "100::1",
        ];
        for ip in public {
            assert!(is_public(ip.parse().expect("ip")), "{ip} should be public");
        }
        for ip in private {
            assert!(
                !is_public(ip.parse().expect("ip")),
                "{ip} should not be public"
            );
        }
    }

    #[tokio::test]
    async fn the_resolver_passes_public_addresses_through_and_refuses_private_only_names() {
        // Numeric names need no DNS server, which keeps this test offline.
        let resolve =
            |host: &str| PublicOnlyResolver.resolve(host.parse::<Name>().expect("a valid name"));
        let addrs: Vec<SocketAddr> = resolve("8.8.8.8").await.expect("public").collect();
        assert_eq!(addrs, vec!["8.8.8.8:0".parse().expect("addr")]);
        let err = resolve("10.0.0.1").await.err().expect("private");
        assert_eq!(
            err.to_string(),
            "host `10.0.0.1` has no publicly routable address; private and internal networks are not allowed"
        );
    }
}
