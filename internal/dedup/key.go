package dedup

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/gwook/gwook/internal/event"
)

// KeyPrefix is the fixed prefix of every key Key returns. The version in it
// names the key and record format: a change to how keys are derived, or to
// what the store keeps under them, needs a new version, so that keys of the
// old and the new format never meet.
const KeyPrefix = "gwook:dedup:v2:"

// keyFieldNames lists the event fields a key can be derived from, by the
// names DEDUP_KEY_FIELDS uses.
var keyFieldNames = []string{"id", "type", "project", "source", "user_id"}

// DefaultKeyFields is the DEDUP_KEY_FIELDS default: events of the same type
// from the same project and source, for the same application, are
// duplicates of each other.
var DefaultKeyFields = []string{"type", "project", "source"}

// applicationName names the application in the hash input. It is not a key
// field name, so no field can stand in for it.
const applicationName = "application"

// keyStackSize is the size of the hash input Key builds without allocating;
// larger inputs take one extra allocation.
const keyStackSize = 512

// Key returns the dedup key for n in the Svix application appID: KeyPrefix
// followed by the hex SHA-256 of the application and the chosen fields, so
// that its length is fixed whatever the event holds. Events of two
// applications never share a key.
//
// The application comes first, then every field, each as its name and its
// value, each preceded by its length (a uvarint), in the order fields lists
// them. The encoding is unambiguous: ("a|b", "c") and ("a", "b|c") give
// different keys, and so do the same values under different field names or
// in a different order, or a value moved between the application and a
// field.
//
// fields must be a list accepted by ParseKeyFields; Key panics on a name it
// does not know.
func Key(appID string, n *event.Notification, fields []string) string {
	size := 2*binary.MaxVarintLen64 + len(applicationName) + len(appID)
	for _, f := range fields {
		size += 2*binary.MaxVarintLen64 + len(f) + len(fieldValue(n, f))
	}
	var stack [keyStackSize]byte
	buf := stack[:0]
	if size > len(stack) {
		buf = make([]byte, 0, size)
	}
	buf = appendPair(buf, applicationName, appID)
	for _, f := range fields {
		buf = appendPair(buf, f, fieldValue(n, f))
	}
	sum := sha256.Sum256(buf)

	var key [len(KeyPrefix) + 2*sha256.Size]byte
	copy(key[:], KeyPrefix)
	hex.Encode(key[len(KeyPrefix):], sum[:])
	return string(key[:])
}

// appendPair appends name and value to buf, each preceded by its length.
func appendPair(buf []byte, name, value string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(name)))
	buf = append(buf, name...)
	buf = binary.AppendUvarint(buf, uint64(len(value)))
	return append(buf, value...)
}

// fieldValue returns the value of the field that name stands for.
func fieldValue(n *event.Notification, name string) string {
	switch name {
	case "id":
		return n.ID
	case "type":
		return n.Type
	case "project":
		return n.Project
	case "source":
		return n.Source
	case "user_id":
		return n.UserID
	}
	panic("dedup: unknown key field " + name)
}

// ParseKeyFields checks a DEDUP_KEY_FIELDS list and returns it as a new
// slice, each entry trimmed of surrounding spaces. Every entry must be one of
// id, type, project, source and user_id (lower case), none may appear twice,
// and the list must not be empty. The error names the entry at fault.
func ParseKeyFields(fields []string) ([]string, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("dedup: no key fields; list at least one of %s", validFieldList())
	}
	out := make([]string, 0, len(fields))
	for i, f := range fields {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
			return nil, fmt.Errorf("dedup: key field %d is empty; valid fields are %s", i+1, validFieldList())
		case !slices.Contains(keyFieldNames, f):
			return nil, fmt.Errorf("dedup: unknown key field %q; valid fields are %s", f, validFieldList())
		case slices.Contains(out, f):
			return nil, fmt.Errorf("dedup: key field %q is listed twice", f)
		}
		out = append(out, f)
	}
	return out, nil
}

func validFieldList() string { return strings.Join(keyFieldNames, ", ") }
