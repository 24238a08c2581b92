package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/internal/dedup"
	"github.com/gwook/gwook/internal/ingest"
	"github.com/gwook/gwook/internal/pipeline"
	"github.com/gwook/gwook/internal/svix"
	"github.com/gwook/gwook/test/redistest"
	"github.com/gwook/gwook/test/svixserver"
)

// testLease is the lease of the pipelines here: long enough that no claim
// expires during a test unless the test waits for it.
const testLease = 30 * time.Second

// stores runs test against each dedup store: Memory, and Redis at the
// shared server.
func stores(t *testing.T, test func(t *testing.T, store dedup.Deduper)) {
	t.Run("memory", func(t *testing.T) {
		mem := dedup.NewMemory()
		t.Cleanup(func() { mem.Close() })
		test(t, mem)
	})
	t.Run("redis", func(t *testing.T) {
		opt, err := redis.ParseURL(redistest.SharedURL())
		if err != nil {
			t.Fatal(err)
		}
		client := redis.NewClient(opt)
		t.Cleanup(func() { client.Close() })
		if err := client.Ping(t.Context()).Err(); err != nil {
			t.Fatalf("Redis at %s does not answer PING: %v", redistest.SharedURL(), err)
		}
		test(t, dedup.NewRedis(client))
	})
}

// newPipeline returns a pipeline that sends to svx with one attempt per
// event and suppresses duplicates in store, waiting up to wait for an event
// that holds the key.
func newPipeline(t *testing.T, svx *svixserver.Server, store dedup.Deduper, wait time.Duration) *pipeline.Pipeline {
	t.Helper()
	return newPipelineWithLease(t, svx, store, wait, testLease)
}

// newPipelineWithLease is newPipeline with the claims' lease given.
func newPipelineWithLease(t *testing.T, svx *svixserver.Server, store dedup.Deduper, wait, lease time.Duration) *pipeline.Pipeline {
	t.Helper()
	return pipeline.New(pipeline.Config{Backend: svix.Backend{Sender: testSender(t, svx)}, Logger: slog.New(slog.DiscardHandler), Dedup: pipeline.Dedup{
		Store: store, TTL: time.Minute, Lease: lease, Wait: wait, KeyFields: dedup.DefaultKeyFields,
	}})
}

// testSender sends to svx with one attempt per event.
func testSender(t *testing.T, svx *svixserver.Server) *svix.Sender {
	t.Helper()
	sender, err := svix.New(svix.Config{Token: "sk_test", ServerURL: svx.URL(), Timeout: 10 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
		Retry: svix.RetryPolicy{MaxAttempts: 1, MaxElapsed: 10 * time.Second, InitialInterval: time.Millisecond,
			MaxInterval: time.Millisecond, RetryAfterMax: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return sender
}

// sameKey returns a function making events that share one dedup key (type,
// project and source, in the application user) and differ by id.
func sameKey(user string) func(id string, entry pipeline.Entry) *pipeline.Message {
	source := fmt.Sprintf("src-%016x", rand.Uint64())
	return func(id string, entry pipeline.Entry) *pipeline.Message {
		m := ingest.Decode(http.Header{}, fmt.Appendf(nil,
			`{"id":%q,"type":"user.signed_up","source":%q,"project":"p1","user_id":%q,"time":"2026-01-02T15:04:05Z","data":{}}`,
			id, source, user), 0)
		if m.Err != nil {
			panic(m.Err)
		}
		m.Delivery.Entry = entry
		return &m
	}
}

// process runs m through p and fails the test unless the outcome is want.
func process(t *testing.T, p *pipeline.Pipeline, m *pipeline.Message, want pipeline.Outcome) pipeline.Result {
	t.Helper()
	r := p.Process(context.Background(), m)
	if r.Outcome != want {
		t.Fatalf("event %s: outcome %s (%v), want %s", m.Event.ID, r.Outcome, r.Err, want)
	}
	return r
}

// inBackground runs m through p in a goroutine; the returned channel yields
// the result.
func inBackground(p *pipeline.Pipeline, m *pipeline.Message) <-chan pipeline.Result {
	done := make(chan pipeline.Result, 1)
	go func() { done <- p.Process(context.Background(), m) }()
	return done
}

// waitForAttempts waits until svx has had n message-creation requests.
func waitForAttempts(t *testing.T, svx *svixserver.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for svx.Attempts() < n {
		if time.Now().After(deadline) {
			t.Fatalf("Svix had %d requests after 5s, want %d", svx.Attempts(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// wantMessages fails the test unless Svix has n messages for eventID.
func wantMessages(t *testing.T, svx *svixserver.Server, eventID string, n int) {
	t.Helper()
	if got := len(svx.MessagesFor(eventID)); got != n {
		t.Errorf("Svix has %d messages for %s, want %d", got, eventID, n)
	}
}

// diesBeforeSettling is a process that dies after its Svix call and before
// it commits or releases its claim (an OOM kill, a lost node): its claims
// stay in the store, in flight, until their lease runs out.
type diesBeforeSettling struct{ dedup.Deduper }

func (diesBeforeSettling) Commit(dedup.Claim, time.Duration, func(error)) {}
func (diesBeforeSettling) Release(context.Context, dedup.Claim) error     { return nil }

func TestRedeliveryAfterACrashIsDelivered(t *testing.T) {
	stores(t, func(t *testing.T, store dedup.Deduper) {
		svx := svixserver.New(t)
		event := sameKey("usr_1")

		// The first process claims, its Svix call fails, and it dies.
		svx.Script(svixserver.Response{Status: http.StatusServiceUnavailable})
		crashed := newPipeline(t, svx, diesBeforeSettling{store}, 0)
		process(t, crashed, event("evt_1", pipeline.EntryPush), pipeline.Unavailable)
		wantMessages(t, svx, "evt_1", 0)

		// The next process gets the redelivery: the same event, not a
		// duplicate of itself, so it goes to Svix.
		next := newPipeline(t, svx, store, 0)
		process(t, next, event("evt_1", pipeline.EntryPush), pipeline.Forwarded)
		wantMessages(t, svx, "evt_1", 1)
		// Now that evt_1 is delivered, another event with its key is a
		// duplicate; a producer's retry of evt_1 still goes to Svix, whose
		// idempotency key answers as the first time and keeps it to one
		// message.
		process(t, next, event("evt_2", pipeline.EntryDirect), pipeline.Duplicate)
		attempts := svx.Attempts()
		process(t, next, event("evt_1", pipeline.EntryDirect), pipeline.Forwarded)
		if svx.Attempts() != attempts+1 {
			t.Errorf("the retry of a delivered event made %d requests to Svix, want 1", svx.Attempts()-attempts)
		}
		wantMessages(t, svx, "evt_1", 1)
		wantMessages(t, svx, "evt_2", 0)
	})
}

func TestCrashedHolderHoldsOtherEventsForItsLease(t *testing.T) {
	stores(t, func(t *testing.T, store dedup.Deduper) {
		svx := svixserver.New(t)
		event := sameKey("usr_1")
		const lease = 2 * time.Second
		svx.Script(svixserver.Response{Status: http.StatusServiceUnavailable})
		process(t, newPipelineWithLease(t, svx, diesBeforeSettling{store}, 0, lease), event("evt_1", pipeline.EntryPush), pipeline.Unavailable)

		// Another event with the key: neither a duplicate (evt_1 was never
		// delivered) nor sent while evt_1 may still be on its way.
		r := process(t, newPipeline(t, svx, store, 0), event("evt_2", pipeline.EntryDirect), pipeline.InFlight)
		if r.RetryAfter <= 0 || r.RetryAfter > lease {
			t.Errorf("RetryAfter = %v, want the rest of the lease, within (0, %v]", r.RetryAfter, lease)
		}
		wantMessages(t, svx, "evt_2", 0)
		// Once the lease has run out, the key is free: an event that waits
		// long enough claims it and is delivered.
		process(t, newPipeline(t, svx, store, time.Minute), event("evt_2", pipeline.EntryDirect), pipeline.Forwarded)
		wantMessages(t, svx, "evt_2", 1)
	})
}

func TestSecondEventIsADuplicateOnlyOnceTheFirstIsDelivered(t *testing.T) {
	stores(t, func(t *testing.T, store dedup.Deduper) {
		svx := svixserver.New(t)
		p := newPipeline(t, svx, store, 0)
		event := sameKey("usr_1")

		svx.Script(svixserver.Response{Delay: 500 * time.Millisecond})
		first := inBackground(p, event("evt_1", pipeline.EntryDirect))
		waitForAttempts(t, svx, 1)
		process(t, p, event("evt_2", pipeline.EntryDirect), pipeline.InFlight)
		process(t, p, event("evt_2", pipeline.EntryPush), pipeline.InFlight)
		if r := <-first; r.Outcome != pipeline.Forwarded {
			t.Fatalf("first event: %s (%v)", r.Outcome, r.Err)
		}
		process(t, p, event("evt_2", pipeline.EntryDirect), pipeline.Duplicate)
		wantMessages(t, svx, "evt_1", 1)
		wantMessages(t, svx, "evt_2", 0)
	})
}

func TestWaitingForTheHolder(t *testing.T) {
	stores(t, func(t *testing.T, store dedup.Deduper) {
		for _, tc := range []struct {
			name   string
			holder svixserver.Response
			// want is the waiting event's outcome; sent, whether it reached
			// Svix.
			want pipeline.Outcome
			sent bool
		}{
			{"holder delivered", svixserver.Response{Delay: 300 * time.Millisecond}, pipeline.Duplicate, false},
			{"holder failed", svixserver.Response{Delay: 300 * time.Millisecond, Status: http.StatusServiceUnavailable}, pipeline.Forwarded, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				svx := svixserver.New(t)
				p := newPipeline(t, svx, store, time.Minute)
				event := sameKey("usr_1")
				svx.Script(tc.holder)
				holder := inBackground(p, event("evt_1", pipeline.EntryPush))
				waitForAttempts(t, svx, 1)
				// Waits for evt_1's outcome, then takes the answer it allows.
				process(t, p, event("evt_2", pipeline.EntryPush), tc.want)
				if r := <-holder; r.Outcome != map[bool]pipeline.Outcome{true: pipeline.Unavailable, false: pipeline.Forwarded}[tc.sent] {
					t.Errorf("holder: %s (%v)", r.Outcome, r.Err)
				}
				if sent := len(svx.MessagesFor("evt_2")) == 1; sent != tc.sent {
					t.Errorf("evt_2 reached Svix: %v, want %v", sent, tc.sent)
				}
			})
		}
	})
}

func TestSvixConflictCommitsTheClaim(t *testing.T) {
	stores(t, func(t *testing.T, store dedup.Deduper) {
		svx := svixserver.New(t)
		event := sameKey("usr_1")
		p := newPipeline(t, svx, store, 0)
		// Svix has a message with evt_1's event id, sent under another
		// idempotency key, so it answers evt_1 409.
		sendElsewhere(t, svx, "usr_1", "evt_1")
		// The 409 means Svix has the event: the claim is committed and
		// another event with the key is a duplicate.
		if r := process(t, p, event("evt_1", pipeline.EntryPush), pipeline.Duplicate); r.Sent.Status != http.StatusConflict {
			t.Fatalf("Svix status %d, want 409", r.Sent.Status)
		}
		process(t, p, event("evt_2", pipeline.EntryPush), pipeline.Duplicate)
		wantMessages(t, svx, "evt_2", 0)
	})
}

// sendElsewhere creates a message for eventID in the application appID at
// svx, under an idempotency key of its own.
func sendElsewhere(t *testing.T, svx *svixserver.Server, appID, eventID string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, svx.URL()+"/api/v1/app/"+appID+"/msg",
		strings.NewReader(fmt.Sprintf(`{"eventType":"user.signed_up","eventId":%q,"payload":{}}`, eventID)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "elsewhere-"+eventID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("creating a message for %s: %d", eventID, resp.StatusCode)
	}
}

func TestReplaySkipsDuplicateSuppression(t *testing.T) {
	stores(t, func(t *testing.T, store dedup.Deduper) {
		svx := svixserver.New(t)
		p := newPipeline(t, svx, store, 0)
		event := sameKey("usr_1")
		// A replay neither claims nor commits: the key stays free.
		process(t, p, event("evt_0", pipeline.EntryReplay), pipeline.Forwarded)
		process(t, p, event("evt_1", pipeline.EntryDirect), pipeline.Forwarded)
		// Nor is it suppressed by a delivered event.
		process(t, p, event("evt_2", pipeline.EntryReplay), pipeline.Forwarded)
		wantMessages(t, svx, "evt_2", 1)
	})
}

func TestApplicationsDoNotSuppressEachOther(t *testing.T) {
	stores(t, func(t *testing.T, store dedup.Deduper) {
		svx := svixserver.New(t)
		p := newPipeline(t, svx, store, 0)
		source := fmt.Sprintf("src-%016x", rand.Uint64())
		for i, user := range []string{"usr_a", "usr_b"} {
			m := ingest.Decode(http.Header{}, fmt.Appendf(nil,
				`{"id":"evt_%d","type":"user.signed_up","source":%q,"project":"p1","user_id":%q,"time":"2026-01-02T15:04:05Z","data":{}}`,
				i, source, user), 0)
			process(t, p, &m, pipeline.Forwarded)
		}
	})
}

func TestStoreErrorIsNeverADuplicate(t *testing.T) {
	// Nothing listens on port 1.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { client.Close() })
	store := dedup.NewRedis(client)
	for _, tc := range []struct {
		failOpen bool
		want     pipeline.Outcome
	}{
		{true, pipeline.Forwarded},
		{false, pipeline.DedupUnavailable},
	} {
		t.Run(fmt.Sprint("fail open ", tc.failOpen), func(t *testing.T) {
			svx := svixserver.New(t)
			sender, err := svix.New(svix.Config{Token: "sk_test", ServerURL: svx.URL(), Logger: slog.New(slog.DiscardHandler),
				Retry: svix.RetryPolicy{MaxAttempts: 1, MaxElapsed: 10 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			p := pipeline.New(pipeline.Config{Backend: svix.Backend{Sender: sender}, Logger: slog.New(slog.DiscardHandler), Dedup: pipeline.Dedup{
				Store: store, TTL: time.Minute, Lease: testLease, Wait: time.Minute, KeyFields: dedup.DefaultKeyFields, FailOpen: tc.failOpen,
			}})
			event := sameKey("usr_1")
			for _, id := range []string{"evt_1", "evt_2"} {
				process(t, p, event(id, pipeline.EntryDirect), tc.want)
			}
		})
	}
}
