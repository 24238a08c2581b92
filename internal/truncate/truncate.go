// Package truncate cuts text that Gwook repeats from outside (event fields
// in logs and answers, Svix's error bodies, Pub/Sub attributes) to a byte
// limit, so that a megabyte-long field cannot flood a log line or break a
// size limit downstream.
package truncate

import (
	"strings"
	"unicode/utf8"
)

// ellipsis marks a string that was cut.
const ellipsis = "…"

// String returns s when it is valid UTF-8 of at most n bytes. Otherwise it
// returns at most n bytes of valid UTF-8: s without its invalid bytes, cut
// to fit and ending in "…" when anything was cut off. n must leave room for
// the ellipsis (3 bytes); a smaller n gives a cut without it.
func String(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	if n < len(ellipsis) {
		return strings.ToValidUTF8(s[:n], "")
	}
	return strings.ToValidUTF8(s[:n-len(ellipsis)], "") + ellipsis
}
