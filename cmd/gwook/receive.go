package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gwook/gwook/internal/webhook"
)

// secretList is the repeatable --secret flag. It never prints the secrets.
type secretList []string

func (s *secretList) String() string {
	if len(*s) == 0 {
		return ""
	}
	return fmt.Sprintf("%d secrets", len(*s))
}

func (s *secretList) Set(v string) error {
	*s = append(*s, strings.TrimSpace(v))
	return nil
}

// receiveCommand runs gwook receive: a webhook receiver for development
// that verifies each webhook and prints a line about it.
func receiveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("receive", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var (
		secrets secretList
		port    int
		addr    string
		status  int
		verbose bool
	)
	flags.Var(&secrets, "secret", "an endpoint secret, `whsec_...`; repeat the flag to accept any of several, as during a rotation (required)")
	flags.IntVar(&port, "port", 9000, "the port to listen on (0: any free port)")
	flags.StringVar(&addr, "addr", "localhost", "the host or address to listen on (empty: every interface)")
	flags.IntVar(&status, "status", http.StatusNoContent, "the status answering a webhook that verifies, e.g. 500 or 410 to try retries; one that does not is answered 401")
	flags.BoolVar(&verbose, "verbose", false, "print each webhook's body too")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: gwook receive --secret whsec_... [--secret whsec_...] [--port 9000] [flags]")
		fmt.Fprintln(stderr, "Receives webhooks on any path, checks their signatures and timestamps, and prints one line")
		fmt.Fprintln(stderr, "per webhook. Beside `make run`, point an endpoint at http://localhost:9000/webhooks.")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError(fmt.Sprintf("receive takes no arguments, got %q", flags.Args()))
	}
	if len(secrets) == 0 {
		flags.Usage()
		return errors.New("receive: --secret is required")
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("receive: --port %d is not a port", port)
	}
	p := &webhookPrinter{out: stdout, verbose: verbose}
	receiver, err := webhook.NewReceiver(secrets, webhook.ReceiverOptions{Status: status, OnReceive: p.print})
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	host := addr
	if host == "" {
		host = "localhost"
	}
	_, listenPort, _ := net.SplitHostPort(ln.Addr().String())
	secretCount := "1 secret"
	if len(secrets) > 1 {
		secretCount = fmt.Sprintf("%d secrets", len(secrets))
	}
	fmt.Fprintf(stderr, "gwook receive: listening on http://%s/webhooks (any path), verifying with %s; Ctrl-C stops\n",
		net.JoinHostPort(host, listenPort), secretCount)

	srv := &http.Server{Handler: receiver, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("receive: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	return nil
}

// webhookPrinter prints a line per received webhook, and its body when
// verbose. The Receiver calls it concurrently.
type webhookPrinter struct {
	mu      sync.Mutex
	out     io.Writer
	verbose bool
}

// print writes, for example:
//
//	2026-03-02T08:15:42.123Z webhook-id=msg_1 verified type=user.signed_up id=evt_1 bytes=57 answered=204
//	2026-03-02T08:15:43.456Z webhook-id=msg_2 rejected="timestamp too old: ..." bytes=57 answered=401
func (p *webhookPrinter) print(w webhook.Webhook) {
	var line strings.Builder
	line.WriteString(w.At.Format("2006-01-02T15:04:05.000Z07:00"))
	line.WriteString(" webhook-id=" + field(w.ID))
	if w.Verified() {
		line.WriteString(" verified")
	} else {
		line.WriteString(" rejected=" + strconv.Quote(w.Err.Error()))
	}
	var event struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if json.Unmarshal(w.Body, &event) == nil {
		if event.Type != "" {
			line.WriteString(" type=" + field(event.Type))
		}
		if event.ID != "" {
			line.WriteString(" id=" + field(event.ID))
		}
	}
	fmt.Fprintf(&line, " bytes=%d answered=%d\n", len(w.Body), w.Status)
	if p.verbose {
		line.WriteString(bodyText(w.Body))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.out, line.String())
}

// field is a received value as it appears in a line: as it is when it is
// plain, quoted when it is empty or holds a space, a quote, a character
// that does not print or bytes that are not UTF-8.
func field(v string) string {
	if v == "" || strings.ContainsFunc(v, func(r rune) bool { return r == ' ' || r == '"' || r == utf8.RuneError || !unicode.IsPrint(r) }) {
		return strconv.Quote(v)
	}
	return v
}

// bodyText is a body as --verbose prints it: JSON indented, anything else
// quoted, ending with a newline.
func bodyText(body []byte) string {
	var indented bytes.Buffer
	if json.Indent(&indented, body, "  ", "  ") == nil {
		return "  " + indented.String() + "\n"
	}
	return "  " + strconv.Quote(string(body)) + "\n"
}
