package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"
)

// sqliteTimeLayout is how SQLite columns hold times: fixed width, UTC, with
// microseconds, so that comparing the text compares the times.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// dbTime truncates t to the microsecond, the precision of PostgreSQL's
// timestamptz, in UTC, so that both dialects give back the value written.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeArg is t as a query argument: a time.Time for PostgreSQL, text for
// SQLite.
func (s *Store) timeArg(t time.Time) any {
	t = dbTime(t)
	if s.dialect == SQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// timeArgOrNull is timeArg, or NULL for a zero t.
func (s *Store) timeArgOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.timeArg(t)
}

// nullTimeArg is timeArg, or NULL for a nil t.
func (s *Store) nullTimeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.timeArg(*t)
}

// timeCol scans a time column of either dialect into *t.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case time.Time:
		*c.t = v.UTC()
		return nil
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("scanning a time: unexpected %T", v)
	}
}

func (c timeCol) parse(v string) error {
	t, err := time.Parse(sqliteTimeLayout, v)
	if err != nil {
		return fmt.Errorf("scanning a time: %w", err)
	}
	*c.t = t
	return nil
}

// nullTimeCol scans a nullable time column into *t, nil for NULL.
type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(v any) error {
	if v == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(v); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// jsonArg is v encoded as JSON text, a value both jsonb (PostgreSQL) and
// text (SQLite) columns take; NULL when isNull.
func jsonArg(v any, isNull bool) (driver.Value, error) {
	if isNull {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// jsonCol scans a JSON column (jsonb or text) into the value at p. A NULL
// leaves it untouched.
type jsonCol struct{ p any }

func (c jsonCol) Scan(v any) error {
	var b []byte
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scanning JSON: unexpected %T", v)
	}
	if err := json.Unmarshal(b, c.p); err != nil {
		return fmt.Errorf("scanning JSON: %w", err)
	}
	return nil
}

// nullStringCol scans a nullable text column into *p, "" for NULL.
type nullStringCol struct{ p *string }

func (c nullStringCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.p = ""
	case string:
		*c.p = v
	case []byte:
		*c.p = string(v)
	default:
		return fmt.Errorf("scanning text: unexpected %T", v)
	}
	return nil
}

// nullStringArg is p, or NULL for "".
func nullStringArg(p string) any {
	if p == "" {
		return nil
	}
	return p
}
