package app_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gwook/gwook/internal/app"
	"github.com/gwook/gwook/internal/store"
	"github.com/gwook/gwook/test/gwooktest"
)

// TestDirectPrunesOldMessages starts Gwook with DELIVERY_BACKEND=direct on
// a database holding a delivered message accepted 40 days ago and one
// accepted now: at start it prunes the old one, with its delivery and
// attempt, logs what it pruned, and keeps the recent one.
func TestDirectPrunesOldMessages(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateApplication(ctx, store.Application{ID: "usr_1", Name: "Retention"}); err != nil {
		t.Fatal(err)
	}
	var msgs []store.Message
	for _, id := range []string{"evt_old", "evt_new"} {
		out, err := s.EnqueueMessages(ctx, []store.NewMessage{{
			Message:     store.Message{ApplicationID: "usr_1", EventID: id, EventType: "t", Body: []byte(`{}`)},
			EndpointIDs: []string{"ep_1"},
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := out[0].Message
		recorded, err := s.RecordAttempts(ctx, []store.AttemptRecord{{
			Attempt: store.Attempt{MessageID: m.ID, EndpointID: "ep_1", At: time.Now(), ResponseStatus: 204},
			Status:  store.DeliveryDelivered,
		}})
		if err == nil {
			err = recorded[0].Err
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	s.Close()
	// The old one was accepted 40 days ago.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-40 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")
	if _, err := db.ExecContext(ctx, `UPDATE messages SET created_at = $1 WHERE id = $2`, old, msgs[0].ID); err != nil {
		t.Fatal(err)
	}
	db.Close()

	g := gwooktest.Start(t, map[string]string{"DELIVERY_BACKEND": "direct", "DATA_DIR": dir}, app.Options{Version: "test"})
	const logged = "direct delivery: pruned messages past their retention"
	deadline := time.Now().Add(10 * time.Second)
	for len(g.Logs.Lines(logged)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %q logged within 10 s:\n%s", logged, g.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	line := g.Logs.Lines(logged)[0]
	for k, want := range map[string]float64{"rows": 3, "messages": 1, "deliveries": 1, "attempts": 1} {
		if line[k] != want {
			t.Errorf("logged %s=%v, want %v: %v", k, line[k], want, line)
		}
	}
	if line["level"] != "INFO" || line["retention"] != "720h0m0s" {
		t.Errorf("logged %v, want at info level with retention 720h0m0s", line)
	}

	s, err = store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetMessage(ctx, "usr_1", msgs[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the message of 40 days ago: %v, want it pruned", err)
	}
	if _, err := s.GetMessage(ctx, "usr_1", msgs[1].ID); err != nil {
		t.Errorf("the recent message: %v, want it kept", err)
	}
}
