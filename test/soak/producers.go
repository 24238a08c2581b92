package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Credentials gwook is started with.
const (
	authUser  = "soak"
	authPass  = "soak-password"
	pushToken = "soak-push-token"
	svixToken = "sk_soak"
)

// eventID is the id of event i of run; every event is unique on it and
// on the default dedup key (type, project, source).
func eventID(run string, i int) string { return "evt_soak_" + run + "_" + strconv.Itoa(i) }

// event returns event i of run, shaped like test/events/event-01.json.
func event(run string, i int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":"user.signed_up","source":"soak-%s-%d","project":"acme-web",`+
		`"user_id":"usr_soak_%d","time":"2026-03-02T08:15:42Z","data":{"email":"maria.lopez@example.com","plan":"pro","n":%d}}`,
		eventID(run, i), run, i, i%8, i)
}

// directStats counts what direct producers saw.
type directStats struct {
	accepted     atomic.Int64 // 202: forwarded
	duplicate    atomic.Int64 // 409: an earlier attempt of ours was delivered
	deadLettered atomic.Int64 // 429/500 with dead_lettered: safe on the dead-letter topic
	rejected     atomic.Int64 // any other answer: a permanent failure
	gaveUp       atomic.Int64 // still failing at the producer's deadline
	retries      atomic.Int64 // attempts after the first
}

// producerDeadline bounds how long a producer keeps retrying one event.
const producerDeadline = 90 * time.Second

// postDirect POSTs body to url as a producer would: it retries connection
// errors, 429s and 5xx that were not dead-lettered (honouring Retry-After),
// and stops at 202, 409, a dead-lettered answer, a permanent failure, or
// the deadline.
func postDirect(ctx context.Context, client *http.Client, url string, body []byte, stats *directStats) {
	deadline := time.Now().Add(producerDeadline)
	wait := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			stats.retries.Add(1)
		}
		status, deadLettered, retryAfter, err := postOnce(ctx, client, url, body)
		switch {
		case err == nil && status == http.StatusAccepted:
			stats.accepted.Add(1)
			return
		case err == nil && status == http.StatusConflict:
			stats.duplicate.Add(1)
			return
		case err == nil && deadLettered:
			stats.deadLettered.Add(1)
			return
		case err == nil && status != http.StatusTooManyRequests && status < 500:
			stats.rejected.Add(1)
			return
		}
		pause := max(wait, retryAfter)
		if ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			stats.gaveUp.Add(1)
			return
		}
		sleepCtx(ctx, pause)
		wait = min(2*wait, 2*time.Second)
	}
}

// postOnce sends one attempt and returns the status, whether the answer
// says the event was dead-lettered, and the Retry-After it asked for.
func postOnce(ctx context.Context, client *http.Client, url string, body []byte) (int, bool, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, false, 0, err
	}
	req.SetBasicAuth(authUser, authPass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, 0, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, false, 0, err
	}
	var problem struct {
		DeadLettered bool `json:"dead_lettered"`
	}
	_ = json.Unmarshal(answer, &problem)
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, problem.DeadLettered, min(time.Duration(secs)*time.Second, 5*time.Second), nil
}
