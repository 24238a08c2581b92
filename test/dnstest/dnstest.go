// Package dnstest runs a DNS server on the loopback for tests, so that
// name resolution is tested without any network beyond 127.0.0.1.
package dnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// Server is a DNS server on 127.0.0.1 that answers A and AAAA queries for
// the names it was given (an empty answer for a name without an address of
// the asked type) and NXDOMAIN for every other name.
type Server struct {
	conn net.PacketConn

	mu      sync.Mutex
	records map[string][]netip.Addr // by lower-case name without final dot
}

// Start runs a Server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{conn: conn, records: map[string][]netip.Addr{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// Set makes name resolve to addrs (any previous answer is replaced).
func (s *Server) Set(name string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parsed []netip.Addr
	for _, a := range addrs {
		parsed = append(parsed, netip.MustParseAddr(a))
	}
	s.records[strings.ToLower(name)] = parsed
}

// Resolver is a pure-Go resolver that sends every query to s.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
		},
	}
}

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if answer, err := s.answer(buf[:n]); err == nil {
			s.conn.WriteTo(answer, from)
		}
	}
}

const (
	typeA    = 1
	typeAAAA = 28
)

// answer builds the response to one query: the header, the question as
// asked, and one answer record per address of the asked type.
func (s *Server) answer(query []byte) ([]byte, error) {
	if len(query) < 12 || binary.BigEndian.Uint16(query[4:]) != 1 {
		return nil, errors.New("not a query with one question")
	}
	var labels []string
	i := 12
	for {
		if i >= len(query) {
			return nil, errors.New("truncated name")
		}
		l := int(query[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(query) {
			return nil, errors.New("bad label")
		}
		labels = append(labels, string(query[i:i+l]))
		i += l
	}
	if i+4 > len(query) {
		return nil, errors.New("truncated question")
	}
	qtype := binary.BigEndian.Uint16(query[i:])
	question := query[12 : i+4]

	s.mu.Lock()
	addrs, known := s.records[strings.ToLower(strings.Join(labels, "."))]
	s.mu.Unlock()

	var answers []byte
	ancount := 0
	for _, a := range addrs {
		var rdata []byte
		switch {
		case qtype == typeA && a.Is4():
			b := a.As4()
			rdata = b[:]
		case qtype == typeAAAA && a.Is6():
			b := a.As16()
			rdata = b[:]
		default:
			continue
		}
		answers = append(answers, 0xc0, 12) // the name: a pointer to the question's
		answers = binary.BigEndian.AppendUint16(answers, qtype)
		answers = binary.BigEndian.AppendUint16(answers, 1) // class IN
		answers = binary.BigEndian.AppendUint32(answers, 0) // TTL
		answers = binary.BigEndian.AppendUint16(answers, uint16(len(rdata)))
		answers = append(answers, rdata...)
		ancount++
	}
	flags := uint16(0x8000 | 0x0400 | 0x0080)            // response, authoritative, recursion available
	flags |= binary.BigEndian.Uint16(query[2:]) & 0x0100 // recursion desired, as asked
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := append([]byte(nil), query[:2]...) // ID
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1)
	resp = binary.BigEndian.AppendUint16(resp, uint16(ancount))
	resp = binary.BigEndian.AppendUint16(resp, 0)
	resp = binary.BigEndian.AppendUint16(resp, 0)
	resp = append(resp, question...)
	return append(resp, answers...), nil
}
