package ingest

import (
	"encoding/base64"
	"net/http"
	"testing"
)

func BenchmarkDecodeRawEvent(b *testing.B) {
	body := []byte(validEvent)
	h := http.Header{}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if m := Decode(h, body); m.Err != nil {
			b.Fatal(m.Err)
		}
	}
}

func BenchmarkDecodeWrappedPush(b *testing.B) {
	body := []byte(`{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(validEvent)) +
		`","attributes":{"origin":"billing"},"messageId":"1234567890","message_id":"1234567890","publishTime":"2026-01-02T15:04:06Z","publish_time":"2026-01-02T15:04:06Z"},"subscription":"projects/p/subscriptions/gwook"}`)
	h := http.Header{}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if m := Decode(h, body); m.Err != nil {
			b.Fatal(m.Err)
		}
	}
}

func BenchmarkDecodeUnwrappedPush(b *testing.B) {
	body := []byte(validEvent)
	h := http.Header{}
	h.Set(HeaderMessageID, "1234567890")
	h.Set(HeaderSubscription, "projects/p/subscriptions/gwook")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if m := Decode(h, body); m.Err != nil {
			b.Fatal(m.Err)
		}
	}
}
