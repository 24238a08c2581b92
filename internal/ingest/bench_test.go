package ingest

import (
	"encoding/base64"
	"net/http"
	"testing"
)

// BenchmarkDecode decodes each shape of body: a producer's raw event, a
// wrapped push and an unwrapped push, all carrying the same event, and
// Eventarc's CloudEvents in both modes, carrying test/events/event-01.json.
func BenchmarkDecode(b *testing.B) {
	binaryHeaders, binaryBody := readRequest(b, "binary.http")
	structuredHeaders, structuredBody := readRequest(b, "structured.http")
	pushHeaders := http.Header{}
	pushHeaders.Set(HeaderMessageID, "1234567890")
	pushHeaders.Set(HeaderSubscription, "projects/p/subscriptions/gwook")
	for _, bc := range []struct {
		name   string
		header http.Header
		body   string
	}{
		{"raw_event", http.Header{}, validEvent},
		{"wrapped_push", http.Header{}, `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(validEvent)) +
			`","attributes":{"origin":"billing"},"messageId":"1234567890","message_id":"1234567890","publishTime":"2026-01-02T15:04:06Z","publish_time":"2026-01-02T15:04:06Z"},"subscription":"projects/p/subscriptions/gwook"}`},
		{"unwrapped_push", pushHeaders, validEvent},
		{"cloudevent_binary", binaryHeaders, string(binaryBody)},
		{"cloudevent_structured", structuredHeaders, string(structuredBody)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := []byte(bc.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if m := Decode(bc.header, body, 0); m.Err != nil {
					b.Fatal(m.Err)
				}
			}
		})
	}
}
