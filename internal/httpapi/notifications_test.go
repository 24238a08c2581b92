package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
