package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/gwook/gwook/internal/api"
	"github.com/gwook/gwook/internal/config"
	"github.com/gwook/gwook/internal/store"
)

// migrateCommand applies the database migrations the database lacks and
// says which.
func migrateCommand(ctx context.Context, args []string, env envconfig.Lookuper, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError(fmt.Sprintf("migrate takes no arguments, got %q", args))
	}
	cfg, err := config.LoadDatabase(ctx, env)
	if err != nil {
		return err
	}
	res, err := store.Migrate(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	if len(res.Applied) == 0 {
		fmt.Fprintf(stdout, "the schema is current (version %d)\n", res.Version)
		return nil
	}
	fmt.Fprintf(stdout, "applied %d migrations; the schema is at version %d\n", len(res.Applied), res.Version)
	return nil
}

// scopeList is a repeatable --scope flag that also takes commas.
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, ",") }

func (s *scopeList) Set(v string) error {
	for scope := range strings.SplitSeq(v, ",") {
		if scope = strings.TrimSpace(scope); scope != "" {
			*s = append(*s, scope)
		}
	}
	return nil
}

// tokenCommand runs gwook token create: a new API token, straight in the
// database, printed on stdout. Its rules are the API's (api.TokenRequest).
func tokenCommand(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return usageError("token takes one subcommand: create")
	}
	flags := flag.NewFlagSet("token create", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var (
		req     api.TokenRequest
		scopes  scopeList
		appID   string
		expires time.Duration
	)
	flags.StringVar(&req.Name, "name", "", "the token's name, 1 to 128 characters (required)")
	flags.Var(&scopes, "scope", "admin, read, ingest or manage; repeat the flag or separate with commas (required)")
	flags.StringVar(&appID, "application", "", "restrict the token to this application (required with manage, not allowed with admin)")
	flags.DurationVar(&expires, "expires", 0, "the token stops working after this long, e.g. 720h (0: never)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: gwook token create --name NAME --scope SCOPE [--application ID] [--expires 720h]")
		fmt.Fprintln(stderr, "Creates an API token in the database (DATABASE_URL, or SQLite in DATA_DIR) and prints it on stdout.")
		fmt.Fprintln(stderr, "It works with no server running and beside running servers; they accept it within 5 seconds.")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return usageError(fmt.Sprintf("token create takes no arguments, got %q", flags.Args()))
	}
	if expires < 0 {
		return errors.New("token create: --expires must not be negative")
	}
	now := time.Now()
	req.Scopes = scopes
	if appID != "" {
		req.ApplicationID = &appID
	}
	if expires > 0 {
		at := now.Add(expires)
		req.ExpiresAt = &at
	}
	if errs := req.Check(now); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = "--" + flagOf(e.Field) + ": " + e.Detail
		}
		return errors.New("token create: " + strings.Join(msgs, "; "))
	}
	cfg, err := config.LoadDatabase(ctx, env)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	t, value, err := st.CreateToken(ctx, req.NewToken())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("token create: no application %q", appID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "created token", t.ID, "("+strings.Join(t.Scopes, ", ")+"); it is shown once:")
	fmt.Fprintln(stdout, value)
	return nil
}

// flagOf names the flag that sets a field of api.TokenRequest.
func flagOf(field string) string {
	switch field {
	case "scopes":
		return "scope"
	case "application_id":
		return "application"
	case "expires_at":
		return "expires"
	}
	return field
}
