package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr bool
	}{
		{name: "defaults", want: config{addr: "127.0.0.1:8071", validate: true}},
		{
			name: "environment",
			env:  map[string]string{"SVIX_TEST_SERVER_ADDR": ":9000", "SVIX_TEST_SERVER_VALIDATE": "false", "SVIX_TEST_SERVER_TOKEN": "t"},
			want: config{addr: ":9000", validate: false, token: "t"},
		},
		{
			name: "flags override environment",
			args: []string{"-addr", ":9001", "-validate=true", "-token", "f"},
			env:  map[string]string{"SVIX_TEST_SERVER_ADDR": ":9000", "SVIX_TEST_SERVER_VALIDATE": "false", "SVIX_TEST_SERVER_TOKEN": "t"},
			want: config{addr: ":9001", validate: true, token: "f"},
		},
		{name: "bad environment boolean", env: map[string]string{"SVIX_TEST_SERVER_VALIDATE": "maybe"}, wantErr: true},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRunServesAndLogsMessages(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdoutReader, stdout := io.Pipe()
	var stderr bytes.Buffer // read only after run returns
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-validate=false", "-token", "secret"},
			func(string) string { return "" }, stdout, &stderr)
		stdout.Close()
	}()

	line, err := bufio.NewReader(stdoutReader).ReadString('\n')
	if err != nil {
		t.Fatalf("reading URL: %v (run: %v)", err, <-done)
	}
	url := strings.TrimSpace(line)
	go io.Copy(io.Discard, stdoutReader)

	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/app/app_1/msg",
		strings.NewReader(`{"eventType":"user.signup","eventId":"evt-1","payload":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	var accepted map[string]any
	for l := range strings.SplitSeq(stderr.String(), "\n") {
		var entry map[string]any
		if json.Unmarshal([]byte(l), &entry) == nil && entry["msg"] == "message accepted" {
			accepted = entry
		}
	}
	if accepted == nil {
		t.Fatalf("no \"message accepted\" line in log:\n%s", stderr.String())
	}
	if accepted["event_id"] != "evt-1" || accepted["app_id"] != "app_1" || accepted["payload"] != `{"a":1}` {
		t.Errorf("log entry %v", accepted)
	}
}
