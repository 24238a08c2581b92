package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// directStats counts what direct producers saw, for the progress lines
// and the summary.
type directStats struct {
	accepted     atomic.Int64 // 202: forwarded
	filtered     atomic.Int64 // 200: dropped on purpose
	duplicate    atomic.Int64 // 409: acknowledged as a duplicate
	deadLettered atomic.Int64 // 429/500 with dead_lettered: safe on the dead-letter topic
	rejected     atomic.Int64 // any other answer: a permanent failure
	gaveUp       atomic.Int64 // still failing at the producer's deadline
	retries      atomic.Int64 // attempts after the first
}

// directAnswer is the last answer a producer got for one copy of an event.
type directAnswer struct {
	status       int       // 0 when the producer gave up on connection errors
	deadLettered bool      // the answer says the event is on the dead-letter topic
	gaveUp       bool      // still failing at the producer's deadline
	at           time.Time // when the answer arrived
}

// acknowledged reports whether the answer tells the producer that gwook took
// the event over: forwarded, filtered, a duplicate, or dead-lettered.
func (a directAnswer) acknowledged() bool {
	return !a.gaveUp && (a.status == http.StatusOK || a.status == http.StatusAccepted ||
		a.status == http.StatusConflict || a.deadLettered)
}

// producerDeadline bounds how long a producer keeps retrying one event.
const producerDeadline = 90 * time.Second

// postDirect POSTs body to url as a producer would and returns the answer
// it stops at: 200 (filtered), 202, 409 (a duplicate), a dead-lettered
// answer, or another 4xx than 429 (a permanent failure). It retries
// connection errors, 429s and 5xx that were not dead-lettered (503 included:
// "try again"), honouring Retry-After, until the deadline.
func postDirect(ctx context.Context, client *http.Client, url string, body []byte, stats *directStats) directAnswer {
	deadline := time.Now().Add(producerDeadline)
	wait := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			stats.retries.Add(1)
		}
		status, deadLettered, retryAfter, err := postOnce(ctx, client, url, body)
		answer := directAnswer{status: status, deadLettered: deadLettered, at: time.Now()}
		switch {
		case err != nil:
		case status == http.StatusOK:
			stats.filtered.Add(1)
			return answer
		case status == http.StatusAccepted:
			stats.accepted.Add(1)
			return answer
		case status == http.StatusConflict:
			stats.duplicate.Add(1)
			return answer
		case deadLettered:
			stats.deadLettered.Add(1)
			return answer
		case status != http.StatusTooManyRequests && status < 500:
			stats.rejected.Add(1)
			return answer
		}
		pause := max(wait, retryAfter)
		if ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			stats.gaveUp.Add(1)
			answer.gaveUp = true
			return answer
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
