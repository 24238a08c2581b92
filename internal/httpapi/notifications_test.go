package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestReadBody(t *testing.T) {
	const limit = 16
	for _, tc := range []struct {
		name          string
		body          io.Reader
		contentLength int64
		want          string
		tooLarge      bool
		fails         bool
	}{
		{name: "announced length", body: strings.NewReader(`{"id":"e1"}`), contentLength: 11, want: `{"id":"e1"}`},
		{name: "exactly the limit", body: strings.NewReader(strings.Repeat("a", limit)), contentLength: limit, want: strings.Repeat("a", limit)},
		{name: "chunked", body: io.MultiReader(strings.NewReader(`{"id"`), strings.NewReader(`:"e1"}`)), contentLength: -1, want: `{"id":"e1"}`},
		{name: "chunked over the limit", body: strings.NewReader(strings.Repeat("a", limit+1)), contentLength: -1, tooLarge: true},
		{name: "announced over the limit", body: strings.NewReader(strings.Repeat("a", limit+1)), contentLength: limit + 1, tooLarge: true},
		{name: "shorter than announced", body: strings.NewReader(`{"id"`), contentLength: 11, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/notifications", tc.body)
			r.ContentLength = tc.contentLength
			got, err := readBody(httptest.NewRecorder(), r, limit)
			var maxErr *http.MaxBytesError
			switch {
			case tc.tooLarge:
				if !errors.As(err, &maxErr) {
					t.Fatalf("err = %v, want *http.MaxBytesError", err)
				}
			case tc.fails:
				if err == nil || errors.As(err, &maxErr) {
					t.Fatalf("err = %v, want a read error", err)
				}
			case err != nil || string(got) != tc.want:
				t.Fatalf("readBody = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// refuseReads fails the test when the body is read.
type refuseReads struct{ t *testing.T }

func (r refuseReads) Read([]byte) (int, error) {
	r.t.Error("the body was read")
	return 0, io.EOF
}

func TestBodyAnnouncedOverTheLimitIsNotRead(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/notifications", refuseReads{t})
	r.ContentLength = 1 << 30
	rec := httptest.NewRecorder()
	_, err := readBody(rec, r, 1<<20)
	var maxErr *http.MaxBytesError
	if !errors.As(err, &maxErr) || maxErr.Limit != 1<<20 {
		t.Fatalf("err = %v, want *http.MaxBytesError with the limit", err)
	}
	if rec.Header().Get("Connection") != "close" {
		t.Error("the connection is kept, to be drained")
	}
}

// trickle returns n bytes of an announced body, then the end of the
// connection.
type trickle struct{ n int }

func (t *trickle) Read(p []byte) (int, error) {
	if t.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), t.n, 100)
	for i := range k {
		p[i] = 'x'
	}
	t.n -= k
	return k, nil
}

func TestBodyBufferGrowsWithWhatArrives(t *testing.T) {
	const announced = 16 << 20
	read := func() {
		r := httptest.NewRequest(http.MethodPost, "/notifications", &trickle{n: 1000})
		r.ContentLength = announced
		if _, err := readBody(httptest.NewRecorder(), r, 64<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	}
	read() // warm up whatever is allocated once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const requests = 10
	for range requests {
		read()
	}
	runtime.ReadMemStats(&after)
	// Each request sent 1,000 bytes of the 16 MiB it announced.
	if perRequest := (after.TotalAlloc - before.TotalAlloc) / requests; perRequest > 64<<10 {
		t.Errorf("%d bytes allocated per request that sent 1000 bytes and announced %d", perRequest, announced)
	}
}

func TestBodyThatDoesNotArriveInTime(t *testing.T) {
	h := scopeRequests(discardLogger, nil)(&notifications{maxBodyBytes: 1 << 20})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Ten of the hundred bytes announced, and then nothing.
	if _, err := io.WriteString(conn, "POST /notifications HTTP/1.1\r\nHost: gwook\r\nContent-Length: 100\r\n\r\n0123456789"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var p Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Type != problemTypeBase+"request_timeout" || p.RequestID == "" || strings.Contains(p.Detail, "i/o timeout") {
		t.Errorf("problem %+v", p)
	}
}
