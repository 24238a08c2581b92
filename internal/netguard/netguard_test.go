package netguard

import (
	"net/netip"
	"testing"
)

func TestForbidden(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want string
	}{
		// IPv4 special-purpose blocks, at their edges.
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this network"},
		{"0.255.255.255", "this network"},
		{"10.0.0.0", "private"},
		{"10.255.255.255", "private"},
		{"100.64.0.0", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.0.1", "link-local"},
		{"169.254.255.255", "link-local"},
		{"172.16.0.0", "private"},
		{"172.31.255.255", "private"},
		{"192.0.0.8", "reserved"},
		{"192.0.2.1", "documentation"},
		{"192.88.99.1", "reserved"},
		{"192.168.0.1", "private"},
		{"192.168.255.255", "private"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.254", "reserved"},
		{"255.255.255.255", "broadcast"},
		// Cloud metadata.
		{"169.254.169.254", "cloud metadata"},
		{"169.254.170.2", "cloud metadata"},
		{"169.254.170.23", "cloud metadata"},
		{"100.100.100.200", "cloud metadata"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fd00:ec2::23", "cloud metadata"},
		{"fd20:ce::254", "cloud metadata"},
		// Public IPv4, including the neighbours of forbidden blocks.
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"1.0.0.0", ""},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.0.1.255", ""},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},
		// IPv6.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"fc00::1", "unique-local"},
		{"fd12:3456:789a::1", "unique-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"ff0e::101", "multicast"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"2001:2::1", "benchmarking"},
		{"2001:1::1", "reserved"},
		{"2001:10::1", "reserved"},
		{"100::1", "reserved"},
		{"5f00::1", "reserved"},
		{"4000::1", "reserved"},
		{"e000::1", "reserved"},
		{"64:ff9b:1::a00:1", "reserved"},
		{"2606:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
		{"2a00:1450:4001:80b::200e", ""},
		{"2001:200::1", ""},
		{"2606:4700::1111%eth0", ""},
		// IPv4-mapped, judged by the IPv4 address.
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:224.0.0.1", "multicast"},
		{"::ffff:8.8.8.8", ""},
		// IPv4-compatible.
		{"::10.0.0.1", "private"},
		{"::127.0.0.1", "loopback"},
		{"::a9fe:a9fe", "cloud metadata"},
		{"::0.0.0.2", "this network"},
		{"::8.8.8.8", ""},
		// NAT64 well-known prefix.
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::192.168.1.1", "private"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata"},
		{"64:ff9b::808:808", ""},
		// 6to4: the IPv4 address is in bits 16-47.
		{"2002:a00:1::1", "private"},
		{"2002:7f00:1::", "loopback"},
		{"2002:a9fe:a9fe::1", "cloud metadata"},
		{"2002:808:808::1", ""},
		// Teredo: server in bits 32-63, client inverted in the last 32.
		{"2001:0:4136:e378::80ff:fffe", "loopback"},               // client 127.0.0.1
		{"2001:0:4136:e378::f5ff:fffe", "private"},                // client 10.0.0.1
		{"2001:0:a00:1::f7f7:f7f7", "private"},                    // server 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation"}, // RFC 4380's example, client 192.0.2.45
		{"2001:0:4136:e378::f7f7:f7f7", ""},                       // client 8.8.8.8
	} {
		t.Run(tc.ip, func(t *testing.T) {
			if got := Forbidden(netip.MustParseAddr(tc.ip)); got != tc.want {
				t.Errorf("Forbidden(%s) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}

func TestForbiddenInvalid(t *testing.T) {
	if got := Forbidden(netip.Addr{}); got == "" {
		t.Error("the zero Addr is allowed")
	}
}

// FuzzForbidden checks that Forbidden never panics, agrees with the
// netip classification, and judges every form that embeds an IPv4
// address as that address.
func FuzzForbidden(f *testing.F) {
	for _, s := range []string{"0.0.0.0", "127.0.0.1", "10.1.2.3", "169.254.169.254", "8.8.8.8", "::1", "fe80::1", "2002:a00:1::", "2001:0:4136:e378::80ff:fffe", "2606:4700::1111"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a16 [16]byte
		copy(a16[:], b)
		ip := netip.AddrFrom16(a16)
		reason := Forbidden(ip)
		if (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsGlobalUnicast()) && reason == "" {
			t.Errorf("Forbidden(%s) allows a non-global address", ip)
		}
		if got := Forbidden(ip.WithZone("eth0")); got != reason {
			t.Errorf("Forbidden(%s%%eth0) = %q, without zone %q", ip, got, reason)
		}
		if got := (Policy{AllowPrivate: true}).refuses(ip); got != "" && got != reasonMetadata {
			t.Errorf("AllowPrivate refuses %s as %q", ip, got)
		}

		v4 := netip.AddrFrom4([4]byte(a16[:4]))
		want := Forbidden(v4)
		v4b := v4.As4()
		mapped := netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: v4b[0], 13: v4b[1], 14: v4b[2], 15: v4b[3]})
		nat64 := netip.AddrFrom16([16]byte{0: 0x00, 1: 0x64, 2: 0xff, 3: 0x9b, 12: v4b[0], 13: v4b[1], 14: v4b[2], 15: v4b[3]})
		sixToFour := a16
		sixToFour[0], sixToFour[1] = 0x20, 0x02
		copy(sixToFour[2:6], v4b[:])
		for _, embedding := range []netip.Addr{mapped, nat64, netip.AddrFrom16(sixToFour)} {
			if got := Forbidden(embedding); got != want {
				t.Errorf("Forbidden(%s) = %q, but Forbidden(%s) = %q", embedding, got, v4, want)
			}
		}
		compat := netip.AddrFrom16([16]byte{12: v4b[0], 13: v4b[1], 14: v4b[2], 15: v4b[3]})
		if got := Forbidden(compat); (got == "") != (want == "") {
			t.Errorf("Forbidden(%s) = %q, but Forbidden(%s) = %q", compat, got, v4, want)
		}
	})
}
