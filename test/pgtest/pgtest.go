// Package pgtest gives a test a fresh, empty PostgreSQL database of its own
// on the machine's PostgreSQL server, and drops it when the test ends.
//
// The server is the one at GWOOK_TEST_POSTGRES_URL, by default DefaultBaseURL
// (127.0.0.1:5432, user postgres, no password). NewDatabase connects there as
// that user, creates a database with a random name (gwook_test_ and 16 hex
// digits) and returns the base URL with its path changed to that database.
// When the server does not answer, the test fails: tests that need
// PostgreSQL never skip silently. Setting GWOOK_TEST_POSTGRES=off skips them
// instead, for a machine without PostgreSQL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultBaseURL is the server used when GWOOK_TEST_POSTGRES_URL is unset.
const DefaultBaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// NamePrefix starts the name of every database that NewDatabase creates.
const NamePrefix = "gwook_test_"

// timeout bounds each administrative step: connecting, creating, dropping.
const timeout = 30 * time.Second

// BaseURL returns the URL of the server that databases are created on:
// GWOOK_TEST_POSTGRES_URL, or DefaultBaseURL when it is unset.
func BaseURL() string {
	if u := os.Getenv("GWOOK_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultBaseURL
}

// NewDatabase creates a new, empty database, returns its URL, and drops it
// (disconnecting whoever is still connected) when the test and its subtests
// have ended. It fails the test when the server does not answer, and skips
// it when GWOOK_TEST_POSTGRES=off.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	if os.Getenv("GWOOK_TEST_POSTGRES") == "off" {
		tb.Skip("pgtest: GWOOK_TEST_POSTGRES=off")
	}
	base := BaseURL()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("pgtest: GWOOK_TEST_POSTGRES_URL is not a URL: %v", err)
	}
	name := NamePrefix + randomHex(8)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := exec(ctx, base, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: creating a database on the test PostgreSQL (set GWOOK_TEST_POSTGRES_URL, or GWOOK_TEST_POSTGRES=off to skip): %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := exec(ctx, base, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			tb.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// exec runs one statement on a new connection to the server at baseURL.
func exec(ctx context.Context, baseURL, stmt string) error {
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
