// Package netguard decides whether Gwook may send webhooks to a URL or an
// address. The management API checks an endpoint's URL when it is created
// or changed (Policy.CheckURL), and the delivery client checks every
// connection on the address it actually dials (Policy.Control), so a name
// that resolves to a public address at creation and to a private one later
// (DNS rebinding) is still refused.
package netguard

import "net/netip"

// reasonMetadata names the cloud metadata addresses. They are refused even
// where private networks are allowed: no webhook receiver lives there, and
// reaching one would hand out the machine's cloud credentials.
const reasonMetadata = "cloud metadata"

// metadataAddrs are the cloud providers' instance metadata services:
// AWS, GCP, Azure, Oracle and DigitalOcean (169.254.169.254), AWS ECS task
// credentials (169.254.170.2), AWS EKS pod identity (169.254.170.23,
// fd00:ec2::23), AWS over IPv6 (fd00:ec2::254), GCP over IPv6
// (fd20:ce::254) and Alibaba Cloud (100.100.100.200).
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true,
	netip.MustParseAddr("169.254.170.2"):   true,
	netip.MustParseAddr("169.254.170.23"):  true,
	netip.MustParseAddr("100.100.100.200"): true,
	netip.MustParseAddr("fd00:ec2::254"):   true,
	netip.MustParseAddr("fd00:ec2::23"):    true,
	netip.MustParseAddr("fd20:ce::254"):    true,
}

// forbiddenRange is a block of addresses and why it is refused.
type forbiddenRange struct {
	prefix netip.Prefix
	reason string
}

func block(prefix, reason string) forbiddenRange {
	return forbiddenRange{netip.MustParsePrefix(prefix), reason}
}

// forbiddenV4 lists the IPv4 blocks refused, from the IANA special-purpose
// registry; the first match names the reason. Blocks that are not globally
// reachable are all refused, even the ones no network should route
// (documentation, benchmarking, reserved): a webhook receiver is never
// there, and refusing them early gives a clear answer instead of a
// timeout.
var forbiddenV4 = []forbiddenRange{
	block("0.0.0.0/32", "unspecified"),          // Linux connects it to the local host
	block("0.0.0.0/8", "this network"),          // RFC 791; not a destination
	block("10.0.0.0/8", "private"),              // RFC 1918
	block("100.64.0.0/10", "carrier-grade NAT"), // RFC 6598; also used inside clouds and VPNs
	block("127.0.0.0/8", "loopback"),
	block("169.254.0.0/16", "link-local"),
	block("172.16.0.0/12", "private"),         // RFC 1918
	block("192.0.0.0/24", "reserved"),         // IETF protocol assignments
	block("192.0.2.0/24", "documentation"),    // TEST-NET-1
	block("192.88.99.0/24", "reserved"),       // deprecated 6to4 relay anycast
	block("192.168.0.0/16", "private"),        // RFC 1918
	block("198.18.0.0/15", "benchmarking"),    // RFC 2544; also used for fake-IP DNS
	block("198.51.100.0/24", "documentation"), // TEST-NET-2
	block("203.0.113.0/24", "documentation"),  // TEST-NET-3
	block("224.0.0.0/4", "multicast"),
	block("255.255.255.255/32", "broadcast"),
	block("240.0.0.0/4", "reserved"), // class E
}

// forbiddenV6 lists the IPv6 blocks refused by name. Every address outside
// 2000::/3, the only block allocated for global unicast, is refused too
// (as "reserved"): that covers the discard prefix 100::/64, the local-use
// NAT64 prefix 64:ff9b:1::/48, SRv6 5f00::/16 and everything unassigned.
// Forms that embed an IPv4 address are judged by that address first (see
// embeddedIPv4).
var forbiddenV6 = []forbiddenRange{
	block("fc00::/7", "unique-local"),
	block("fe80::/10", "link-local"),
	block("fec0::/10", "site-local"), // deprecated, still private
	block("ff00::/8", "multicast"),
	block("2001:db8::/32", "documentation"),
	block("3fff::/20", "documentation"), // RFC 9637
	block("2001:2::/48", "benchmarking"),
	block("2001::/23", "reserved"), // IETF protocol assignments (Teredo is unwrapped before)
}

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	compat6        = netip.MustParsePrefix("::/96")        // IPv4-compatible, deprecated
	nat64          = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 well-known prefix
	sixToFour      = netip.MustParsePrefix("2002::/16")    // RFC 3056
	teredo         = netip.MustParsePrefix("2001::/32")    // RFC 4380
)

// Forbidden reports why ip may not be reached by a webhook ("loopback",
// "private", "link-local", "unique-local", "multicast", "unspecified",
// "cloud metadata", "carrier-grade NAT", "documentation", "reserved", ...),
// or "" when it may. A zone is ignored. IPv6 forms that embed an IPv4
// address are judged by that address: IPv4-mapped (::ffff:10.0.0.1),
// IPv4-compatible (::10.0.0.1), NAT64 (64:ff9b::10.0.0.1), 6to4
// (2002:0a00:0001::) and Teredo (server and client address).
func Forbidden(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	ip = ip.WithZone("").Unmap()
	if metadataAddrs[ip] {
		return reasonMetadata
	}
	if ip.Is4() {
		return firstMatch(forbiddenV4, ip)
	}
	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	}
	if embedded := embeddedIPv4(ip); len(embedded) > 0 {
		for _, v4 := range embedded {
			if reason := Forbidden(v4); reason != "" {
				return reason
			}
		}
		return ""
	}
	if reason := firstMatch(forbiddenV6, ip); reason != "" {
		return reason
	}
	if !globalUnicast6.Contains(ip) {
		return "reserved"
	}
	return ""
}

func firstMatch(ranges []forbiddenRange, ip netip.Addr) string {
	for _, fr := range ranges {
		if fr.prefix.Contains(ip) {
			return fr.reason
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries, which
// is where a packet to it may end up: the last 32 bits of an
// IPv4-compatible or NAT64 address, bits 16–47 of a 6to4 address, and a
// Teredo address's server (bits 32–63) and client (the last 32 bits,
// inverted).
func embeddedIPv4(ip netip.Addr) []netip.Addr {
	b := ip.As16()
	last := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case compat6.Contains(ip), nat64.Contains(ip):
		return []netip.Addr{last}
	case sixToFour.Contains(ip):
		return []netip.Addr{netip.AddrFrom4([4]byte(b[2:6]))}
	case teredo.Contains(ip):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{netip.AddrFrom4([4]byte(b[4:8])), netip.AddrFrom4(client)}
	}
	return nil
}
