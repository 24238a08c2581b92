package webhook_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/webhook"
)

func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	ts := time.Unix(1761000000, 0)
	for _, n := range []int{1, 2} {
		secrets := testSecrets(n)
		b.Run("secrets="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := webhook.Sign(secrets, "msg_2mP8a1QxL9vR7tY3nB5cD0eF", ts, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkHeaders(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	ts := time.Unix(1761000000, 0)
	ua := webhook.UserAgent("1.2.3")
	for _, n := range []int{1, 2} {
		secrets := testSecrets(n)
		b.Run("secrets="+strconv.Itoa(n), func(b *testing.B) {
			h := make(http.Header, 8)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := webhook.Headers(h, ua, secrets, "msg_2mP8a1QxL9vR7tY3nB5cD0eF", ts, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
