package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// MaxURLLength is the longest endpoint URL accepted, in characters.
const MaxURLLength = 2048

// ResolveTimeout bounds the name resolution of CheckURL when the caller's
// context allows longer.
const ResolveTimeout = 5 * time.Second

// ErrForbiddenAddress is wrapped by the error of a connection Control
// refused, so a delivery can tell it from other dial errors with
// errors.Is.
var ErrForbiddenAddress = errors.New("forbidden address")

// URLError is why CheckURL refused an endpoint URL. Reason is written for
// the API client and names neither the URL (it may hold a secret) nor the
// addresses a name resolved to.
type URLError struct {
	Reason string
	// Forbidden is true when the host is, or resolves to, an address the
	// policy refuses (or is a local name): errors.Is(err,
	// ErrForbiddenAddress) then holds.
	Forbidden bool
}

func (e *URLError) Error() string { return e.Reason }

// Unwrap is ErrForbiddenAddress for a forbidden host.
func (e *URLError) Unwrap() error {
	if e.Forbidden {
		return ErrForbiddenAddress
	}
	return nil
}

// forbid is a refusal of a forbidden host.
func forbid(format string, args ...any) error {
	return &URLError{Reason: fmt.Sprintf(format, args...), Forbidden: true}
}

func refuse(format string, args ...any) error {
	return &URLError{Reason: fmt.Sprintf(format, args...)}
}

// localSuffixes are names that are local by definition and refused as
// private without asking DNS: RFC 6761 (localhost), RFC 6762 (mDNS .local,
// which is also Kubernetes' cluster.local), RFC 8375 (home.arpa) and the
// .internal top-level domain reserved for private use (GCP's
// metadata.google.internal among others).
var localSuffixes = []string{".localhost", ".local", ".internal", ".home.arpa"}

// Policy decides which endpoint URLs and connections Gwook allows.
type Policy struct {
	// AllowPrivate (DELIVERY_ALLOW_PRIVATE_NETWORKS) allows plain http://
	// URLs, local names and every address Forbidden refuses except the
	// cloud metadata ones. It is meant for development.
	AllowPrivate bool
	// Resolver resolves host names for CheckURL; nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
}

// refuses reports why the policy refuses ip, or "" when it allows it.
func (p Policy) refuses(ip netip.Addr) string {
	reason := Forbidden(ip)
	if p.AllowPrivate && reason != reasonMetadata {
		return ""
	}
	return reason
}

// CheckURL validates raw as an endpoint URL and returns a *URLError saying
// what is wrong, or nil. The URL must be absolute, https (or http where
// private networks are allowed), at most MaxURLLength characters, with a
// host, without user info and without fragment. An IP literal host is
// judged by Forbidden; a numeric host other than a dotted-quad IPv4 address
// ("2130706433", "0x7f.1", "127.1", "0177.0.0.1") is refused because
// resolvers disagree on what it means. A host name is resolved (within
// ResolveTimeout) and refused when any of its addresses is forbidden, or
// when it does not resolve: an endpoint's name must resolve when it is
// created or changed, or the API answers 400. A name that is local by
// definition (localhost, *.localhost, *.local, *.internal, *.home.arpa)
// is refused without asking DNS unless private networks are allowed. The
// connection is checked again when delivering (Control), since the name
// may resolve elsewhere by then.
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	if n := utf8.RuneCountInString(raw); n > MaxURLLength {
		return refuse("the URL is %d characters long; at most %d are allowed", n, MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return refuse("the URL is not valid")
	}
	switch {
	case u.Scheme == "":
		return refuse("the URL must be absolute, starting with https://")
	case u.Scheme == "http" && !p.AllowPrivate:
		return refuse("the URL must use https; plain http is allowed only where private networks are")
	case u.Scheme != "https" && u.Scheme != "http":
		return refuse("the URL must use https")
	case u.Host == "":
		return refuse("the URL has no host")
	case u.User != nil:
		return refuse("the URL must not contain a user name or password: it would be stored, shown and logged with the endpoint; webhooks are authenticated by their signature")
	case strings.Contains(raw, "#"):
		return refuse("the URL must not have a fragment (#...): it is never sent to the server")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return refuse("the URL's port must be between 1 and 65535")
		}
	}
	host := strings.ToLower(u.Hostname())
	if strings.HasPrefix(u.Host, "[") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return refuse("the URL's host is not a valid IPv6 address")
		}
		if ip.Zone() != "" {
			return refuse("the URL's host must not have an IPv6 zone (%%...)")
		}
		return p.checkAddr(ip, "is")
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return p.checkAddr(ip, "is")
	}
	name := strings.TrimSuffix(host, ".")
	if endsInNumber(name) {
		return refuse("the URL's host is numeric but not an IPv4 address in dotted decimal form (like 192.0.2.1)")
	}
	if !validHostName(name) {
		for _, c := range []byte(name) {
			if c >= utf8.RuneSelf {
				return refuse("the URL's host must be ASCII; write an international domain name in its xn-- form")
			}
		}
		return refuse("the URL's host is not a valid host name")
	}
	if !p.AllowPrivate && isLocalName(name) {
		return forbid("the URL's host is a local name; webhooks go to public addresses only")
	}
	return p.checkName(ctx, host)
}

// checkAddr judges an address the URL's host is or resolves to.
func (p Policy) checkAddr(ip netip.Addr, verb string) error {
	reason := p.refuses(ip)
	if reason == "" {
		return nil
	}
	return forbid("the URL's host %s a non-public address (%s); webhooks go to public addresses only", verb, reason)
}

// checkName resolves host and judges every address it resolves to.
func (p Policy) checkName(ctx context.Context, host string) error {
	resolver := p.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, ResolveTimeout)
	defer cancel()
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	var dnsErr *net.DNSError
	switch {
	case err == nil && len(addrs) == 0, errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return refuse("the URL's host name does not resolve")
	case err != nil:
		return refuse("the URL's host name could not be resolved now; try again")
	}
	for _, ip := range addrs {
		if err := p.checkAddr(ip, "resolves to"); err != nil {
			return err
		}
	}
	return nil
}

// endsInNumber reports whether the last label of name is a number as
// inet_aton and URL parsers read one (decimal, or hexadecimal after 0x),
// which makes the whole name read as an IPv4 address by some of them.
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// validHostName reports whether name (lower case, without a final dot) is
// a syntactically valid DNS name: labels of 1 to 63 letters, digits,
// hyphens and underscores, at most 253 characters in all.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

func isLocalName(name string) bool {
	if name == "localhost" {
		return true
	}
	for _, suffix := range localSuffixes {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// Control is a net.Dialer Control function that refuses a connection to
// an address the policy forbids, with an error wrapping
// ErrForbiddenAddress. It runs on the resolved address just before the
// connection is made, so it holds whatever the name resolves to by then.
// An address it cannot read (not IP:port) is refused.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read %s address %q", ErrForbiddenAddress, network, address)
	}
	if reason := p.refuses(ap.Addr()); reason != "" {
		return fmt.Errorf("%w: %s (%s)", ErrForbiddenAddress, ap.Addr(), reason)
	}
	return nil
}
