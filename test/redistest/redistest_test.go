package redistest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/gwook/gwook/test/proc"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want 127.0.0.1:port", s.Addr)
	}
	if want := "redis://" + s.Addr + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	if err := proc.PingRedis(s.Addr); err != nil {
		t.Fatalf("after Start: PING: %v", err)
	}

	s.Stop(t)
	if err := proc.PingRedis(s.Addr); err == nil {
		t.Fatal("after Stop: PING answered")
	}
	s.Stop(t) // stopping a stopped server does nothing

	addr := s.Addr
	s.Restart(t)
	if s.Addr != addr {
		t.Errorf("after Restart: Addr = %q, want %q", s.Addr, addr)
	}
	if err := proc.PingRedis(s.Addr); err != nil {
		t.Fatalf("after Restart: PING: %v", err)
	}

	s.Restart(t) // restarting a running server stops it first
	if err := proc.PingRedis(s.Addr); err != nil {
		t.Fatalf("after second Restart: PING: %v", err)
	}
}

func TestStoppedWhenTestEnds(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		addr = Start(t).Addr
	})
	if err := proc.PingRedis(addr); err == nil {
		t.Fatalf("redis-server on %s still answers after its test ended", addr)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the calling goroutine, as testing.T's does, without failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartFailsWithoutRedisServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := &fatalRecorder{TB: t}
	done := make(chan *Server)
	go func() {
		var s *Server
		defer func() { done <- s }()
		s = Start(r)
	}()
	if s := <-done; s != nil {
		t.Fatalf("Start returned a server at %s without redis-server on PATH", s.Addr)
	}
	if !strings.Contains(r.msg, "redis-server is not on PATH") {
		t.Errorf("Start failed with %q, want it to say redis-server is not on PATH", r.msg)
	}
}

func TestServersAreSeparate(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr {
		t.Fatalf("two servers share %s", a.Addr)
	}
	a.Stop(t)
	if err := proc.PingRedis(b.Addr); err != nil {
		t.Fatalf("stopping one server stopped the other: PING %s: %v", b.Addr, err)
	}
}

func TestSharedURL(t *testing.T) {
	tests := []struct {
		name, url, want string
	}{
		{"default", "", DefaultSharedURL},
		{"REDIS_URL", "redis://example:7000/2", "redis://example:7000/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("REDIS_URL", tt.url)
			if got := SharedURL(); got != tt.want {
				t.Errorf("SharedURL() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClusterAddrs(t *testing.T) {
	t.Setenv("GWOOK_TEST_REDIS_CLUSTER_ADDRS", "")
	if got := ClusterAddrs(); len(got) != 6 || got[0] != "127.0.0.1:7001" || got[5] != "127.0.0.1:7006" {
		t.Errorf("ClusterAddrs() by default = %v, want 127.0.0.1:7001 to 7006", got)
	}
	t.Setenv("GWOOK_TEST_REDIS_CLUSTER_ADDRS", "a:1,b:2")
	if got := ClusterAddrs(); len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Errorf("ClusterAddrs() = %v, want [a:1 b:2]", got)
	}
}

func TestSentinelSettings(t *testing.T) {
	t.Setenv("GWOOK_TEST_REDIS_SENTINEL_ADDRS", "")
	t.Setenv("GWOOK_TEST_REDIS_SENTINEL_MASTER", "")
	if got := SentinelAddrs(); len(got) != 1 || got[0] != "127.0.0.1:7013" {
		t.Errorf("SentinelAddrs() by default = %v, want [127.0.0.1:7013]", got)
	}
	if got := SentinelMaster(); got != "gwook-test" {
		t.Errorf("SentinelMaster() by default = %q, want gwook-test", got)
	}
	t.Setenv("GWOOK_TEST_REDIS_SENTINEL_ADDRS", "a:1,b:2")
	t.Setenv("GWOOK_TEST_REDIS_SENTINEL_MASTER", "other")
	if got := SentinelAddrs(); len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Errorf("SentinelAddrs() = %v, want [a:1 b:2]", got)
	}
	if got := SentinelMaster(); got != "other" {
		t.Errorf("SentinelMaster() = %q, want other", got)
	}
}

func TestStartTLS(t *testing.T) {
	s := StartTLS(t)
	if want := "rediss://" + s.Addr + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	// The server speaks TLS only: a plain PING gets no PONG.
	if err := proc.PingRedis(s.Addr); err == nil {
		t.Error("a plain-text PING was answered")
	}
}
