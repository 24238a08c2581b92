package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 250
)

// ListOptions asks for one page of a list.
type ListOptions struct {
	// Limit is the page size, 1–MaxLimit; 0 means DefaultLimit.
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first.
	Cursor string
}

// Page is one page of a list, oldest first.
type Page[T any] struct {
	Items []T
	// NextCursor asks for the next page; empty on the last page.
	NextCursor string
}

// keyset is the position after which a page starts: the created_at and id
// of the previous page's last row.
type keyset struct {
	createdAt time.Time
	id        string
}

// encodeCursor makes an opaque cursor: base64url of "<unix micros>.<id>".
func encodeCursor(createdAt time.Time, id string) string {
	raw := strconv.FormatInt(dbTime(createdAt).UnixMicro(), 10) + "." + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// pageRequest checks opts and returns the limit and, after the first page,
// the keyset to start after.
func pageRequest(opts ListOptions) (int, *keyset, error) {
	limit := opts.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return 0, nil, fmt.Errorf("%w: limit %d is not within 1–%d", ErrInvalidPage, opts.Limit, MaxLimit)
	}
	if opts.Cursor == "" {
		return limit, nil, nil
	}
	bad := fmt.Errorf("%w: malformed cursor", ErrInvalidPage)
	raw, err := base64.RawURLEncoding.DecodeString(opts.Cursor)
	if err != nil {
		return 0, nil, bad
	}
	micros, id, ok := strings.Cut(string(raw), ".")
	if !ok || id == "" {
		return 0, nil, bad
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return 0, nil, bad
	}
	return limit, &keyset{createdAt: time.UnixMicro(us).UTC(), id: id}, nil
}

// finishPage trims the one extra row that a query fetches to learn whether
// another page follows, and makes the cursor for it.
func finishPage[T any](items []T, limit int, key func(T) (time.Time, string)) Page[T] {
	if len(items) <= limit {
		return Page[T]{Items: items}
	}
	items = items[:limit]
	return Page[T]{Items: items, NextCursor: encodeCursor(key(items[limit-1]))}
}

// listQuery is one paged list: what it is (for errors), the SELECT of its
// columns FROM its table, an optional condition on the table's own columns
// with parameters numbered from $2 and their values, and how to read a row
// and key it.
type listQuery[T any] struct {
	what       string
	from       string
	filter     string
	filterArgs []any
	scan       func(interface{ Scan(...any) error }) (T, error)
	key        func(T) (time.Time, string)
}

// listPage reads one page of q, oldest first by (created_at, id), resuming
// after the cursor of opts.
func listPage[T any](ctx context.Context, s *Store, opts ListOptions, q listQuery[T]) (Page[T], error) {
	limit, after, err := pageRequest(opts)
	if err != nil {
		return Page[T]{}, dbError(q.what, err)
	}
	args := append([]any{limit + 1}, q.filterArgs...)
	var where []string
	if q.filter != "" {
		where = append(where, q.filter)
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(created_at, id) > ($%d, $%d)", len(args)+1, len(args)+2))
		args = append(args, s.timeArg(after.createdAt), after.id)
	}
	query := q.from
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.read.QueryContext(ctx, query+" ORDER BY created_at, id LIMIT $1", args...)
	if err != nil {
		return Page[T]{}, dbError(q.what, err)
	}
	defer rows.Close()
	items := []T{}
	for rows.Next() {
		item, err := q.scan(rows)
		if err != nil {
			return Page[T]{}, dbError(q.what, err)
		}
		items = append(items, item)
	}
	if err := rows.Err(); err != nil {
		return Page[T]{}, dbError(q.what, err)
	}
	return finishPage(items, limit, q.key), nil
}
