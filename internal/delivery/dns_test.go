package delivery

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeDNS is a DNS server on 127.0.0.1 that answers A queries for the
// names it was given, an empty answer to other queries for those names,
// and NXDOMAIN for every other name, so the client's name resolution needs
// no network beyond the loopback.
type fakeDNS struct {
	conn net.PacketConn

	mu    sync.Mutex
	names map[string]netip.Addr // by lower-case name without final dot
}

func startFakeDNS(t testing.TB) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeDNS{conn: conn, names: map[string]netip.Addr{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer := s.answer(buf[:n]); answer != nil {
				conn.WriteTo(answer, from)
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// set makes name resolve to the IPv4 address addr.
func (s *fakeDNS) set(name, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.names[strings.ToLower(name)] = netip.MustParseAddr(addr)
}

// resolver is a pure-Go resolver that sends every query to s.
func (s *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
		},
	}
}

// answer builds the response to a query with one question, or returns nil
// for anything else.
func (s *fakeDNS) answer(query []byte) []byte {
	if len(query) < 12 || binary.BigEndian.Uint16(query[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(query) && query[i] != 0 {
		l := int(query[i])
		if l > 63 || i+1+l > len(query) {
			return nil
		}
		labels = append(labels, string(query[i+1:i+1+l]))
		i += 1 + l
	}
	i++ // the root label
	if i+4 > len(query) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(query[i:])
	question := query[12 : i+4]

	s.mu.Lock()
	addr, known := s.names[strings.ToLower(strings.Join(labels, "."))]
	s.mu.Unlock()

	flags := uint16(0x8400) | binary.BigEndian.Uint16(query[2:])&0x0100 // response, authoritative, RD as asked
	if !known {
		flags |= 3 // NXDOMAIN
	}
	withAnswer := known && qtype == 1
	resp := append([]byte(nil), query[:2]...) // ID
	resp = binary.BigEndian.AppendUint16(resp, flags)
	resp = binary.BigEndian.AppendUint16(resp, 1) // questions
	if withAnswer {
		resp = binary.BigEndian.AppendUint16(resp, 1)
	} else {
		resp = binary.BigEndian.AppendUint16(resp, 0)
	}
	resp = binary.BigEndian.AppendUint32(resp, 0) // authority and additional records
	resp = append(resp, question...)
	if withAnswer {
		a := addr.As4()
		resp = append(resp, 0xc0, 12)                 // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, 1) // A
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		resp = binary.BigEndian.AppendUint16(resp, 4) // length
		resp = append(resp, a[:]...)
	}
	return resp
}
