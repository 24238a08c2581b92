package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gwook/gwook/test/dnstest"
)

// testDNS starts a DNS server with the names the URL tests use.
func testDNS(t testing.TB) *dnstest.Server {
	s := dnstest.Start(t)
	s.Set("good.test", "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
	s.Set("evil.test", "127.0.0.1")
	s.Set("private.test", "10.1.2.3")
	s.Set("mixed.test", "93.184.216.34", "fd00::1")
	s.Set("mapped.test", "::ffff:192.168.0.1")
	s.Set("meta.test", "169.254.169.254")
	s.Set("nodata.test")
	s.Set("intranet", "10.0.0.8")
	return s
}

func TestCheckURL(t *testing.T) {
	dns := testDNS(t)
	const prefix = "https://1.1.1.1/"
	for _, tc := range []struct {
		name         string
		url          string
		allowPrivate bool
		want         string // part of the error message; "" for accepted
	}{
		{"public IPv4", "https://1.1.1.1/hook", false, ""},
		{"public IPv4 with port and query", "https://8.8.8.8:8443/hook?x=1&y=2", false, ""},
		{"public IPv6", "https://[2606:4700::1111]/hook", false, ""},
		{"public IPv6 with port", "https://[2606:4700::1111]:443/hook", false, ""},
		{"scheme in capitals", "HTTPS://1.1.1.1/", false, ""},
		{"empty port", "https://1.1.1.1:/", false, ""},
		{"longest allowed", prefix + strings.Repeat("a", MaxURLLength-len(prefix)), false, ""},
		{"longest allowed, counted in characters", prefix + strings.Repeat("é", MaxURLLength-len(prefix)), false, ""},

		{"empty", "", false, "absolute"},
		{"relative path", "/hook", false, "absolute"},
		{"no scheme", "1.1.1.1/hook", false, "absolute"},
		{"scheme-relative", "//1.1.1.1/hook", false, "absolute"},
		{"ftp", "ftp://1.1.1.1/", false, "must use https"},
		{"ftp where private networks are allowed", "ftp://1.1.1.1/", true, "must use https"},
		{"javascript", "javascript:alert(1)", false, "must use https"},
		{"http", "http://1.1.1.1/", false, "plain http is allowed only where private networks are"},
		{"http where private networks are allowed", "http://1.1.1.1/", true, ""},
		{"no host", "https:///hook", false, "no host"},
		{"nothing after the scheme", "https://", false, "no host"},
		{"opaque", "https:1.1.1.1", false, "no host"},
		{"user and password", "https://user:hunter2@1.1.1.1/", false, "must not contain a user name or password"},
		{"user", "https://user@1.1.1.1/", false, "must not contain a user name or password"},
		{"empty user info", "https://@1.1.1.1/", false, "must not contain a user name or password"},
		{"too long", prefix + strings.Repeat("a", MaxURLLength-len(prefix)+1), false, "at most 2048"},
		{"fragment", "https://1.1.1.1/hook#part", false, "fragment"},
		{"empty fragment", "https://1.1.1.1/hook#", false, "fragment"},
		{"port 0", "https://1.1.1.1:0/", false, "port"},
		{"port too big", "https://1.1.1.1:65536/", false, "port"},
		{"port overflowing", "https://1.1.1.1:99999999999999999999999/", false, "port"},
		{"space in host", "https://exa mple.com/", false, "not valid"},
		{"percent in host", "https://%31.1.1.1/", false, "not valid"},
		{"bracketed IPv4", "https://[127.0.0.1]/", false, "not valid"},

		{"loopback", "https://127.0.0.1/", false, "is a non-public address (loopback)"},
		{"loopback where private networks are allowed", "http://127.0.0.1:8080/", true, ""},
		{"private", "https://10.0.0.1/", false, "(private)"},
		{"private where private networks are allowed", "https://192.168.1.10/", true, ""},
		{"unspecified", "https://0.0.0.0/", false, "(unspecified)"},
		{"broadcast", "https://255.255.255.255/", false, "(broadcast)"},
		{"metadata", "https://169.254.169.254/latest/meta-data/", false, "(cloud metadata)"},
		{"metadata where private networks are allowed", "http://169.254.169.254/latest/meta-data/", true, "(cloud metadata)"},
		{"Alibaba metadata", "http://100.100.100.200/", true, "(cloud metadata)"},
		{"IPv6 loopback", "https://[::1]/", false, "(loopback)"},
		{"IPv6 unspecified", "https://[::]/", false, "(unspecified)"},
		{"IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/", false, "(loopback)"},
		{"IPv4-mapped private, in hex", "https://[::ffff:a00:1]/", false, "(private)"},
		{"IPv4-mapped metadata", "https://[::ffff:a9fe:a9fe]/", true, "(cloud metadata)"},
		{"NAT64 private", "https://[64:ff9b::10.0.0.1]/", false, "(private)"},
		{"6to4 loopback", "https://[2002:7f00:1::1]/", false, "(loopback)"},
		{"unique-local", "https://[fd00::1]/", false, "(unique-local)"},
		{"IPv6 metadata", "https://[fd00:ec2::254]/", true, "(cloud metadata)"},
		{"link-local with zone", "https://[fe80::1%25eth0]/", false, "zone"},
		{"link-local with zone where private networks are allowed", "https://[fe80::1%25eth0]/", true, "zone"},
		{"public IPv6 with zone", "https://[2606:4700::1111%25eth0]/", false, "zone"},
		{"link-local", "https://[fe80::1]/", false, "(link-local)"},

		{"decimal IPv4", "https://2130706433/", false, "numeric"},
		{"decimal IPv4 where private networks are allowed", "http://2130706433/", true, "numeric"},
		{"hex IPv4", "https://0x7f000001/", false, "numeric"},
		{"hex and decimal parts", "https://0x7f.1/", false, "numeric"},
		{"short IPv4", "https://127.1/", false, "numeric"},
		{"octal IPv4", "https://0177.0.0.1/", false, "numeric"},
		{"leading zero", "https://127.0.0.01/", false, "numeric"},
		{"octal whole", "https://017700000001/", false, "numeric"},
		{"five parts", "https://1.2.3.4.5/", false, "numeric"},
		{"public IPv4 with a final dot", "https://1.1.1.1./", false, "numeric"},
		{"name ending in a number", "https://example.123/", false, "numeric"},
		{"name ending in a hex number", "https://example.0x1F/", false, "numeric"},
		{"bare 0x", "https://0x/", false, "numeric"},
		{"fullwidth digits", "https://１２７.０.０.１/", false, "ASCII"},
		{"international name", "https://bücher.example/", false, "ASCII"},
		{"empty label", "https://a..b/", false, "not a valid host name"},
		{"label too long", "https://" + strings.Repeat("a", 64) + ".test/", false, "not a valid host name"},
		{"name too long", "https://" + strings.Repeat("abcdefghi.", 26) + "test/", false, "not a valid host name"},

		{"localhost", "https://localhost/", false, "local name"},
		{"localhost in capitals with a final dot", "https://LOCALHOST./", false, "local name"},
		{"under .localhost", "https://app.localhost/", false, "local name"},
		{"under .internal", "https://metadata.google.internal/", false, "local name"},
		{"under .local", "https://printer.local/", false, "local name"},
		{"Kubernetes service", "https://svc.ns.svc.cluster.local/", false, "local name"},
		{"under .home.arpa", "https://router.home.arpa/", false, "local name"},
		{"localhost where private networks are allowed", "http://localhost:8080/", true, ""},

		{"name resolving to public addresses", "https://good.test/hook", false, ""},
		{"name in capitals with a final dot", "https://GOOD.TEST./hook", false, ""},
		{"name resolving to loopback", "https://evil.test/", false, "resolves to a non-public address (loopback)"},
		{"name resolving to loopback where private networks are allowed", "http://evil.test/", true, ""},
		{"name resolving to a private address", "https://private.test/", false, "resolves to a non-public address (private)"},
		{"name with a public and a unique-local address", "https://mixed.test/", false, "(unique-local)"},
		{"name resolving to an IPv4-mapped private address", "https://mapped.test/", false, "(private)"},
		{"name resolving to metadata", "https://meta.test/", true, "(cloud metadata)"},
		{"unknown name", "https://missing.test/", false, "does not resolve"},
		{"name without addresses", "https://nodata.test/", false, "does not resolve"},
		{"single-label name", "https://intranet/", false, "(private)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{AllowPrivate: tc.allowPrivate, Resolver: dns.Resolver()}
			err := p.CheckURL(t.Context(), tc.url)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tc.url, err)
				}
				return
			}
			var urlErr *URLError
			if !errors.As(err, &urlErr) {
				t.Fatalf("CheckURL(%q) = %v (%T), want a *URLError", tc.url, err, err)
			}
			if !strings.Contains(urlErr.Reason, tc.want) {
				t.Errorf("CheckURL(%q) = %q, want it to contain %q", tc.url, urlErr.Reason, tc.want)
			}
			if strings.Contains(urlErr.Reason, "hunter2") {
				t.Errorf("the error repeats the URL's password: %q", urlErr.Reason)
			}
		})
	}
}

func TestCheckURLResolverFailure(t *testing.T) {
	p := Policy{Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("network unreachable")
		},
	}}
	err := p.CheckURL(t.Context(), "https://good.test/")
	var urlErr *URLError
	if !errors.As(err, &urlErr) || !strings.Contains(urlErr.Reason, "could not be resolved now") {
		t.Errorf("CheckURL with a failing resolver = %v, want a *URLError saying it could not be resolved now", err)
	}
}

func TestControl(t *testing.T) {
	for _, tc := range []struct {
		address      string
		allowPrivate bool
		refused      bool
	}{
		{"1.1.1.1:443", false, false},
		{"[2606:4700::1111]:443", false, false},
		{"127.0.0.1:80", false, true},
		{"127.0.0.1:80", true, false},
		{"[::ffff:10.0.0.1]:443", false, true},
		{"[::ffff:10.0.0.1]:443", true, false},
		{"[fe80::1%eth0]:443", false, true},
		{"169.254.169.254:80", false, true},
		{"169.254.169.254:80", true, true},
		{"[fd00:ec2::254]:80", true, true},
		{"/run/docker.sock", true, true},
		{"", false, true},
	} {
		err := Policy{AllowPrivate: tc.allowPrivate}.Control("tcp", tc.address, nil)
		if got := errors.Is(err, ErrForbiddenAddress); got != tc.refused || (err != nil && !got) {
			t.Errorf("Control(%q), AllowPrivate %v = %v, want refused %v", tc.address, tc.allowPrivate, err, tc.refused)
		}
	}
}

// listen returns a TCP listener on the loopback and a channel that gets
// every connection it accepts.
func listen(t *testing.T) (net.Listener, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	return ln, accepted
}

// expectAccepted checks that the listener accepted client's connection.
func expectAccepted(t *testing.T, client net.Conn, accepted <-chan net.Conn) {
	t.Helper()
	server := <-accepted
	defer server.Close()
	if server.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("the listener accepted %s, the client is %s", server.RemoteAddr(), client.LocalAddr())
	}
}

func TestDialRefusesLoopback(t *testing.T) {
	ln, accepted := listen(t)

	d := net.Dialer{Control: Policy{}.Control}
	conn, err := d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err == nil {
		conn.Close()
		t.Fatal("dialing the loopback succeeded")
	}
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("dial error = %v, want one wrapping ErrForbiddenAddress", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("dial error = %v (%T), want a *net.OpError", err, err)
	}

	d = net.Dialer{Control: Policy{AllowPrivate: true}.Control}
	conn, err = d.DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dialing the loopback with private networks allowed: %v", err)
	}
	defer conn.Close()
	expectAccepted(t, conn, accepted)
}

// TestDialRefusesRebinding: a name that resolved to a public address when
// the URL was checked and resolves to the loopback when dialed is refused.
func TestDialRefusesRebinding(t *testing.T) {
	ln, accepted := listen(t)
	dns := dnstest.Start(t)
	dns.Set("rebind.test", "93.184.216.34")
	p := Policy{Resolver: dns.Resolver()}
	if err := p.CheckURL(t.Context(), "https://rebind.test/hook"); err != nil {
		t.Fatalf("CheckURL while the name is public: %v", err)
	}

	dns.Set("rebind.test", "127.0.0.1")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := net.Dialer{Resolver: dns.Resolver(), Control: p.Control}
	conn, err := d.DialContext(t.Context(), "tcp", net.JoinHostPort("rebind.test", port))
	if err == nil {
		conn.Close()
		t.Fatal("dialing the rebound name succeeded")
	}
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("dial error = %v, want one wrapping ErrForbiddenAddress", err)
	}

	d.Control = Policy{AllowPrivate: true}.Control
	conn, err = d.DialContext(t.Context(), "tcp", net.JoinHostPort("rebind.test", port))
	if err != nil {
		t.Fatalf("dialing the rebound name with private networks allowed: %v", err)
	}
	defer conn.Close()
	expectAccepted(t, conn, accepted)
}

// FuzzCheckURL checks that CheckURL never panics, refuses only with a
// *URLError, and accepts only URLs that parse, use https (or http where
// private networks are allowed), and whose IP literal host is allowed.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://1.1.1.1/hook", "https://[2606:4700::1111]:443/x", "http://127.0.0.1:8080/", "https://good.test/hook",
		"https://evil.test/", "https://user:pw@1.1.1.1/", "https://[fe80::1%25eth0]/", "https://2130706433/",
		"https://0x7f.1/", "https://localhost./", "ftp://x/", "https://[::ffff:a9fe:a9fe]/", "https://1.1.1.1/#f",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	dns := testDNS(f)
	f.Fuzz(func(t *testing.T, raw string, allowPrivate bool) {
		if len(raw) > 512 {
			// The length limit is tested by TestCheckURL; long inputs
			// only make the fuzzer's minimization slow.
			return
		}
		p := Policy{AllowPrivate: allowPrivate, Resolver: dns.Resolver()}
		err := p.CheckURL(context.Background(), raw)
		if err != nil {
			var urlErr *URLError
			if !errors.As(err, &urlErr) || urlErr.Reason == "" {
				t.Fatalf("CheckURL(%q) = %v (%T), want a *URLError with a reason", raw, err, err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("CheckURL accepted %q, which does not parse: %v", raw, perr)
		}
		if u.Scheme != "https" && !(allowPrivate && u.Scheme == "http") {
			t.Fatalf("CheckURL accepted %q with scheme %q, AllowPrivate %v", raw, u.Scheme, allowPrivate)
		}
		if u.Host == "" || u.User != nil || strings.Contains(raw, "#") || utf8.RuneCountInString(raw) > MaxURLLength {
			t.Fatalf("CheckURL accepted %q", raw)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			if reason := p.refuses(ip); reason != "" {
				t.Fatalf("CheckURL accepted %q, whose host is %s", raw, reason)
			}
		}
	})
}
