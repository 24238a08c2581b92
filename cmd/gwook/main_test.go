package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantOut string
		wantErr string
	}{
		{"version", []string{"version"}, nil, "gwook dev\n", ""},
		{"unknown command", []string{"frobnicate"}, nil, "", `unknown command "frobnicate"`},
		{"serve without configuration", nil, nil, "", "SVIX_AUTH_TOKEN is required"},
		{"serve with a bad port", []string{"serve"}, map[string]string{"SVIX_AUTH_TOKEN": "sk", "PUBSUB_VERIFICATION_TOKEN": "t", "HTTP_SERVER_PORT": "0"}, "", "HTTP_SERVER_PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, envconfig.MapLookuper(tc.env), &out)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if out.String() != tc.wantOut {
				t.Errorf("output %q, want %q", out.String(), tc.wantOut)
			}
		})
	}
}
