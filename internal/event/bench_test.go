package event_test

import (
	"testing"

	"github.com/gwook/gwook/internal/event"
)

func BenchmarkDecode(b *testing.B) {
	raw := readFile(b, typicalExample)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := event.Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	n, err := event.Decode(readFile(b, typicalExample))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := event.Validate(&n); err != nil {
			b.Fatal(err)
		}
	}
}
