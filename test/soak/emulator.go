package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// emulator calls the Pub/Sub emulator's REST API (see test/pubsubemu for
// the facts about it: every call wants Content-Type application/json).
type emulator struct {
	host    string // host:port
	project string
	client  *http.Client
}

func newEmulator(host, project string) *emulator {
	return &emulator{host: host, project: project, client: &http.Client{Timeout: 30 * time.Second}}
}

func (e *emulator) topic(id string) string { return "projects/" + e.project + "/topics/" + id }
func (e *emulator) subscription(id string) string {
	return "projects/" + e.project + "/subscriptions/" + id
}

// call sends in as JSON (nothing when in is nil) to /v1/path and fails
// unless the answer is 200.
func (e *emulator) call(ctx context.Context, method, path string, in any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+e.host+"/v1/"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("emulator: %s %s: %s: %s", method, path, resp.Status, answer)
	}
	return nil
}

func (e *emulator) createTopic(ctx context.Context, id string) error {
	return e.call(ctx, http.MethodPut, e.topic(id), struct{}{})
}

// createSubscription creates a subscription to topic; with a push endpoint
// it is a push subscription (wrapped, Pub/Sub's default).
func (e *emulator) createSubscription(ctx context.Context, id, topic, pushEndpoint string, ackDeadline time.Duration) error {
	type pushConfig struct {
		PushEndpoint string `json:"pushEndpoint"`
	}
	sub := struct {
		Topic              string      `json:"topic"`
		PushConfig         *pushConfig `json:"pushConfig,omitempty"`
		AckDeadlineSeconds int         `json:"ackDeadlineSeconds"`
	}{Topic: e.topic(topic), AckDeadlineSeconds: int(ackDeadline / time.Second)}
	if pushEndpoint != "" {
		sub.PushConfig = &pushConfig{PushEndpoint: pushEndpoint}
	}
	return e.call(ctx, http.MethodPut, e.subscription(id), sub)
}

// delete removes a topic or subscription by its full name.
func (e *emulator) delete(ctx context.Context, name string) error {
	return e.call(ctx, http.MethodDelete, name, nil)
}

// publish publishes one message per element of data to topic.
func (e *emulator) publish(ctx context.Context, topic string, data [][]byte) error {
	type message struct {
		Data []byte `json:"data"`
	}
	req := struct {
		Messages []message `json:"messages"`
	}{}
	for _, d := range data {
		req.Messages = append(req.Messages, message{Data: d})
	}
	return e.call(ctx, http.MethodPost, e.topic(topic)+":publish", req)
}
