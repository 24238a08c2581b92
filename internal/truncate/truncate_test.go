package truncate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "abc", 10, "abc"},
		{"exactly the limit", "abcde", 5, "abcde"},
		{"cut with an ellipsis", "abcdefghij", 6, "abc…"},
		{"cut between runes", "aé€é", 6, "aé…"},
		{"cut inside a rune", "a€€", 5, "a…"},
		{"invalid bytes dropped", "a\xffb", 10, "ab"},
		{"invalid bytes dropped, then cut", "a\xffbcdefgh", 5, "ab…"},
		{"limit below the ellipsis", "abcdef", 2, "ab"},
		{"limit below the ellipsis, inside a rune", "éé", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := String(tc.in, tc.n)
			if got != tc.want {
				t.Errorf("String(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func FuzzString(f *testing.F) {
	f.Add("abcdef", 4)
	f.Add("aé€\xff", 5)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := String(s, n)
		if len(got) > n || !utf8.ValidString(got) {
			t.Fatalf("String(%q, %d) = %q: %d bytes, valid %v", s, n, got, len(got), utf8.ValidString(got))
		}
		if len(s) <= n && utf8.ValidString(s) && got != s {
			t.Fatalf("String(%q, %d) = %q, want it unchanged", s, n, got)
		}
		if !strings.HasPrefix(strings.ToValidUTF8(s, ""), strings.TrimSuffix(got, ellipsis)) {
			t.Fatalf("String(%q, %d) = %q is not a prefix of the text", s, n, got)
		}
	})
}
