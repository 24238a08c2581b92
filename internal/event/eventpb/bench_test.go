package eventpb_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/event/eventpb"
	gwookv1 "github.com/gwook/gwook/proto/gwook/v1"
)

// typicalExample is the event the JSON decoder's benchmarks use too.
const typicalExample = "../../../test/events/event-03.json"

// BenchmarkDecode decodes and validates one event, the typical example,
// in binary protobuf and in JSON (compact, as producers send it).
func BenchmarkDecode(b *testing.B) {
	pretty, err := os.ReadFile(typicalExample)
	if err != nil {
		b.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, pretty); err != nil {
		b.Fatal(err)
	}
	var e gwookv1.Event
	if err := protojson.Unmarshal(pretty, &e); err != nil {
		b.Fatal(err)
	}
	pb := marshal(b, &e)
	b.Run("protobuf", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(pb)))
		for b.Loop() {
			if _, err := eventpb.Decode(pb); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		raw := compact.Bytes()
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := event.Decode(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
