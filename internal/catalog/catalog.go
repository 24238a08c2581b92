package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gwook/gwook/internal/eventtype"
	"github.com/gwook/gwook/internal/filter"
	"github.com/gwook/gwook/internal/store"
)

// Errors of Authenticate.
var (
	// ErrUnknownToken: the value is not a token, or no token has it.
	ErrUnknownToken = errors.New("catalog: unknown token")
	// ErrExpiredToken: the token exists but has expired.
	ErrExpiredToken = errors.New("catalog: token expired")
)

// Defaults of Options.
const (
	DefaultPollInterval  = time.Second
	DefaultTouchInterval = time.Minute
)

// pageSize is the page of the listings that load a snapshot.
const pageSize = store.MaxLimit

// pollTimeout bounds one background poll, so that a database that hangs
// does not hold the catalog's poll lock for ever.
const pollTimeout = 10 * time.Second

// closeFlushTimeout bounds the last write of last-used times at Close.
const closeFlushTimeout = 5 * time.Second

// Options configure a Catalog. The zero value gives the defaults.
type Options struct {
	// PollInterval is the time between two polls of the change log;
	// default DefaultPollInterval.
	PollInterval time.Duration
	// TouchInterval is the time between two writes of tokens' last-used
	// times; default DefaultTouchInterval.
	TouchInterval time.Duration
	// Logger receives poll and write failures; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for expiry and last use; default time.Now.
	Now func() time.Time
}

// Catalog is one replica's in-memory view of every token, application,
// filter, endpoint and event type.
// Create it with New, fill it with Start, stop it with Close. It is safe for
// concurrent use.
type Catalog struct {
	st   *store.Store
	opts Options

	// mu guards the snapshot.
	mu sync.RWMutex
	// tokens maps string(hash) to the token; tokenKeys maps a token id to
	// its key in tokens.
	tokens    map[string]store.Token
	tokenKeys map[string]string
	apps      map[string]struct{}
	// filters maps an application id to its compiled filter.
	filters map[string]*filter.Filter
	// endpoints maps an application id to its endpoints, oldest first.
	// A slice is never changed once stored: a change stores a new one, so
	// that Endpoints can hand it out without copying.
	endpoints map[string][]store.Endpoint
	// eventTypes maps an event type's name to its archived flag and
	// compiled schema. A value is never changed once stored.
	eventTypes map[string]*eventtype.Type

	// pollLock (capacity one) is held while the snapshot is loaded or
	// changes are polled, so that polls apply in order; a channel rather
	// than a mutex lets a waiting Sync give up when its context ends.
	pollLock chan struct{}
	// pollsStarted counts polls; it changes only under pollLock.
	pollsStarted atomic.Int64
	// These are guarded by pollLock.
	loaded      bool
	seq         int64 // the last change applied
	lastPollErr error

	// usedMu guards used: token id → time of its last use not yet written.
	usedMu sync.Mutex
	used   map[string]time.Time

	// Counters for tests.
	backgroundPolls atomic.Int64
	touchWrites     atomic.Int64

	// lifeMu guards the life cycle: started, closed, stopPolling.
	lifeMu          sync.Mutex
	started, closed bool
	stopPolling     context.CancelFunc // ends the goroutine
	done            chan struct{}      // closed when the goroutine has ended
}

// New returns a Catalog of the records in st. It is empty until Start.
func New(st *store.Store, opts Options) *Catalog {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.TouchInterval <= 0 {
		opts.TouchInterval = DefaultTouchInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Catalog{
		st:         st,
		opts:       opts,
		tokens:     map[string]store.Token{},
		tokenKeys:  map[string]string{},
		apps:       map[string]struct{}{},
		filters:    map[string]*filter.Filter{},
		endpoints:  map[string][]store.Endpoint{},
		eventTypes: map[string]*eventtype.Type{},
		pollLock:   make(chan struct{}, 1),
		used:       map[string]time.Time{},
		done:       make(chan struct{}),
	}
}

// Start loads every token and application, then polls the change log in a
// goroutine until Close. ctx bounds the load only: the polling goes on
// after it ends. Start returns the error of the load, after which it may be
// called again, and an error when the catalog was started or closed.
func (c *Catalog) Start(ctx context.Context) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	switch {
	case c.closed:
		return errors.New("catalog: Start after Close")
	case c.started:
		return errors.New("catalog: started twice")
	}
	if err := c.lock(ctx); err != nil {
		return err
	}
	err := c.reload(ctx)
	c.loaded = err == nil
	c.unlock()
	if err != nil {
		return err
	}
	c.started = true
	pollCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stopPolling = stop
	go c.run(pollCtx)
	return nil
}

// Close stops the polling and writes the last-used times not yet written.
// It may be called more than once.
func (c *Catalog) Close() {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.started {
		c.stopPolling()
		<-c.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeFlushTimeout)
	defer cancel()
	c.flushTouches(ctx)
}

// Sync polls the change log now and returns once every change committed
// before the call has applied, or with the error of the poll (the snapshot
// is then as it was). A poll that started after this call did, and
// succeeded, serves it too.
func (c *Catalog) Sync(ctx context.Context) error {
	ticket := c.pollsStarted.Load()
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	if c.pollsStarted.Load() > ticket && c.lastPollErr == nil {
		// A poll began after this call and read the change log then: it
		// has applied every change committed before this call.
		return nil
	}
	return c.poll(ctx)
}

// Authenticate returns the token whose value is value, without a database
// query. It returns ErrUnknownToken when value does not start with
// store.TokenPrefix or no token has it, and ErrExpiredToken when the token
// has expired. A successful use is recorded for the token's last_used_at.
// The token's LastUsedAt is as of the snapshot, not of this use.
func (c *Catalog) Authenticate(value string) (store.Token, error) {
	if !strings.HasPrefix(value, store.TokenPrefix) {
		return store.Token{}, ErrUnknownToken
	}
	hash := store.HashToken(value)
	// Finding the hash in a map takes time that depends on the hash, not on
	// how much of the value matches a stored one: the value carries 256
	// random bits and SHA-256 scatters any guess over the whole hash, so
	// timing the lookup teaches nothing about a token's value. The constant
	// time comparison after it costs little and guards the match itself.
	c.mu.RLock()
	t, ok := c.tokens[string(hash)]
	c.mu.RUnlock()
	if !ok || !store.TokenHashEqual(t.Hash, hash) {
		return store.Token{}, ErrUnknownToken
	}
	now := c.opts.Now()
	if t.Expired(now) {
		return store.Token{}, ErrExpiredToken
	}
	c.usedMu.Lock()
	c.used[t.ID] = now
	c.usedMu.Unlock()
	// The caller gets its own slices, so it cannot change the snapshot.
	t.Scopes = slices.Clone(t.Scopes)
	t.Hash = slices.Clone(t.Hash)
	return t, nil
}

// HasApplication reports whether the application with the given id exists,
// without a database query.
func (c *Catalog) HasApplication(id string) bool {
	c.mu.RLock()
	_, ok := c.apps[id]
	c.mu.RUnlock()
	return ok
}

// Filter returns the compiled filter of the application with the given id,
// or nil when it has none, without a database query. A stored filter that
// does not compile (written by an older version whose CEL accepted it)
// is a filter that drops every event with rule invalid_filter: a filter
// exists to keep events from leaving.
func (c *Catalog) Filter(appID string) *filter.Filter {
	c.mu.RLock()
	f := c.filters[appID]
	c.mu.RUnlock()
	return f
}

// Endpoints returns the endpoints of the application with the given id,
// oldest first, without a database query; none when it has none or does not
// exist. The slice is shared: the caller must not change it.
func (c *Catalog) Endpoints(appID string) []store.Endpoint {
	c.mu.RLock()
	eps := c.endpoints[appID]
	c.mu.RUnlock()
	return eps
}

// Endpoint returns the endpoint with the given id of the given application,
// without a database query, and whether there is one. Its slices are
// shared: the caller must not change them.
func (c *Catalog) Endpoint(appID, id string) (store.Endpoint, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.endpoints[appID] {
		if e.ID == id {
			return e, true
		}
	}
	return store.Endpoint{}, false
}

// EventType returns the catalogued event type with the given name, or nil
// when the catalogue has none, without a database query. Its schema was
// compiled when the type was loaded or last changed.
func (c *Catalog) EventType(name string) *eventtype.Type {
	c.mu.RLock()
	et := c.eventTypes[name]
	c.mu.RUnlock()
	return et
}

// compileEventType compiles the schema of the stored event type et,
// logging one that no longer compiles.
func (c *Catalog) compileEventType(et store.EventType) *eventtype.Type {
	t := &eventtype.Type{Archived: et.Archived}
	if et.Schema == nil {
		return t
	}
	s, err := eventtype.Compile(et.Schema)
	if err != nil {
		c.opts.Logger.Error("catalog: a stored event type's schema does not compile; the type's events are invalid until it is replaced",
			"event_type", et.Name, "error", err.Error())
		t.Err = err
		return t
	}
	t.Schema = s
	return t
}

// compile compiles the stored filter f, logging one that no longer compiles.
func (c *Catalog) compile(f store.Filter) *filter.Filter {
	compiled, err := filter.Compile(filter.Spec{IncludeTypes: f.IncludeTypes, ExcludeTypes: f.ExcludeTypes, Expression: f.Expression})
	if err != nil {
		c.opts.Logger.Error("catalog: a stored filter does not compile; the application's events are dropped until it is replaced",
			"application_id", f.ApplicationID, "error", err.Error())
		return filter.Refusing("the application's stored filter does not compile: " + err.Error())
	}
	return compiled
}

// lock takes pollLock, or returns ctx's error.
func (c *Catalog) lock(ctx context.Context) error {
	select {
	case c.pollLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Catalog) unlock() { <-c.pollLock }

// run polls and writes last-used times until ctx ends, at Close.
func (c *Catalog) run(ctx context.Context) {
	defer close(c.done)
	pollTicker := time.NewTicker(c.opts.PollInterval)
	defer pollTicker.Stop()
	touchTicker := time.NewTicker(c.opts.TouchInterval)
	defer touchTicker.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-pollTicker.C:
			err := c.backgroundPoll(ctx)
			c.backgroundPolls.Add(1)
			switch {
			case ctx.Err() != nil:
				return // closing: the poll was cut short
			case err != nil && failures == 0:
				c.opts.Logger.Warn("catalog: polling the store for changes failed; serving the last snapshot and retrying",
					"error", err)
				failures++
			case err != nil:
				failures++
			case failures > 0:
				c.opts.Logger.Info("catalog: polling the store for changes works again", "failed_polls", failures)
				failures = 0
			}
		case <-touchTicker.C:
			c.flushTouches(ctx)
		}
	}
}

// backgroundPoll is one poll of the goroutine, bounded by pollTimeout.
func (c *Catalog) backgroundPoll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	if err := c.lock(ctx); err != nil {
		return err
	}
	defer c.unlock()
	return c.poll(ctx)
}

// poll applies the changes after c.seq, or loads a new snapshot when they
// were pruned. The caller holds pollLock.
func (c *Catalog) poll(ctx context.Context) (err error) {
	c.pollsStarted.Add(1)
	defer func() { c.lastPollErr = err }()
	if !c.loaded {
		return errors.New("catalog: not started")
	}
	changes, next, err := c.st.ChangesSince(ctx, c.seq)
	if errors.Is(err, store.ErrChangesPruned) {
		c.opts.Logger.Info("catalog: the change log was pruned past this replica's position; loading everything again")
		return c.reload(ctx)
	}
	if err != nil {
		return err
	}
	for _, ch := range changes {
		if err := c.apply(ctx, ch); err != nil {
			// c.seq stays: the next poll applies these changes again,
			// which is harmless since applying re-reads the records.
			return err
		}
	}
	c.seq = next
	return nil
}

// apply brings the snapshot up to date with the record that ch names.
func (c *Catalog) apply(ctx context.Context, ch store.Change) error {
	switch ch.Kind {
	case store.KindToken:
		t, err := c.st.GetToken(ctx, ch.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.removeToken(ch.ID)
		if err == nil {
			c.addToken(t)
		}
	case store.KindApplication:
		_, err := c.st.GetApplication(ctx, ch.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if ch.Op == store.OpDelete || err != nil {
			// The application's tokens went with it. An application
			// created again under the same id has new tokens, each with
			// a change later than this one.
			delete(c.apps, ch.ID)
			delete(c.filters, ch.ID)
			delete(c.endpoints, ch.ID)
			for key, t := range c.tokens {
				if t.ApplicationID == ch.ID {
					delete(c.tokens, key)
					delete(c.tokenKeys, t.ID)
				}
			}
		}
		if err == nil {
			c.apps[ch.ID] = struct{}{}
		}
	case store.KindFilter:
		f, err := c.st.GetFilter(ctx, ch.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var compiled *filter.Filter
		if err == nil {
			compiled = c.compile(f)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if compiled == nil {
			delete(c.filters, ch.ID)
		} else {
			c.filters[ch.ID] = compiled
		}
	case store.KindEventType:
		et, err := c.st.GetEventType(ctx, ch.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		var compiled *eventtype.Type
		if err == nil {
			compiled = c.compileEventType(et)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if compiled == nil {
			delete(c.eventTypes, ch.ID)
		} else {
			c.eventTypes[ch.ID] = compiled
		}
	case store.KindEndpoint:
		e, err := c.st.GetEndpoint(ctx, ch.ApplicationID, ch.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		eps := slices.DeleteFunc(slices.Clone(c.endpoints[ch.ApplicationID]), func(old store.Endpoint) bool { return old.ID == ch.ID })
		if err == nil {
			eps = append(eps, e)
			slices.SortFunc(eps, compareEndpoints)
		}
		if len(eps) == 0 {
			delete(c.endpoints, ch.ApplicationID)
		} else {
			c.endpoints[ch.ApplicationID] = eps
		}
	}
	return nil
}

// compareEndpoints orders endpoints oldest first, as the store lists them.
func compareEndpoints(a, b store.Endpoint) int {
	if n := a.CreatedAt.Compare(b.CreatedAt); n != 0 {
		return n
	}
	return strings.Compare(a.ID, b.ID)
}

// addToken adds t to the snapshot. The caller holds mu for writing.
func (c *Catalog) addToken(t store.Token) {
	key := string(t.Hash)
	c.tokens[key] = t
	c.tokenKeys[t.ID] = key
}

// removeToken drops the token with the given id, if held. The caller holds
// mu for writing.
func (c *Catalog) removeToken(id string) {
	if key, ok := c.tokenKeys[id]; ok {
		delete(c.tokens, key)
		delete(c.tokenKeys, id)
	}
}

// reload reads the change log's sequence number, then every token,
// application, filter, endpoint and event type, and swaps the new snapshot in. The caller holds pollLock.
func (c *Catalog) reload(ctx context.Context) error {
	// The sequence number first: a change committed during the listing is
	// after it, so the next poll applies it whether the listing saw it or
	// not.
	seq, err := c.st.ChangeSeq(ctx)
	if err != nil {
		return fmt.Errorf("catalog: loading: %w", err)
	}
	tokens := map[string]store.Token{}
	tokenKeys := map[string]string{}
	err = listAll(ctx, c.st.ListTokens, func(t store.Token) {
		key := string(t.Hash)
		tokens[key] = t
		tokenKeys[t.ID] = key
	})
	if err != nil {
		return fmt.Errorf("catalog: loading tokens: %w", err)
	}
	apps := map[string]struct{}{}
	err = listAll(ctx, c.st.ListApplications, func(a store.Application) { apps[a.ID] = struct{}{} })
	if err != nil {
		return fmt.Errorf("catalog: loading applications: %w", err)
	}
	filters := map[string]*filter.Filter{}
	err = listAll(ctx, c.st.ListFilters, func(f store.Filter) { filters[f.ApplicationID] = c.compile(f) })
	if err != nil {
		return fmt.Errorf("catalog: loading filters: %w", err)
	}
	endpoints := map[string][]store.Endpoint{}
	err = listAll(ctx, c.st.ListAllEndpoints, func(e store.Endpoint) {
		endpoints[e.ApplicationID] = append(endpoints[e.ApplicationID], e)
	})
	if err != nil {
		return fmt.Errorf("catalog: loading endpoints: %w", err)
	}
	eventTypes := map[string]*eventtype.Type{}
	err = listAll(ctx, c.st.ListEventTypes, func(et store.EventType) { eventTypes[et.Name] = c.compileEventType(et) })
	if err != nil {
		return fmt.Errorf("catalog: loading event types: %w", err)
	}
	c.mu.Lock()
	c.tokens, c.tokenKeys, c.apps, c.filters, c.endpoints, c.eventTypes = tokens, tokenKeys, apps, filters, endpoints, eventTypes
	c.mu.Unlock()
	c.seq = seq
	return nil
}

// listAll calls each for every item of every page of list.
func listAll[T any](ctx context.Context, list func(context.Context, store.ListOptions) (store.Page[T], error), each func(T)) error {
	opts := store.ListOptions{Limit: pageSize}
	for {
		page, err := list(ctx, opts)
		if err != nil {
			return err
		}
		for _, item := range page.Items {
			each(item)
		}
		if page.NextCursor == "" {
			return nil
		}
		opts.Cursor = page.NextCursor
	}
}

// flushTouches writes the last-used times recorded since the last write.
// When the write fails, the times are kept for the next one.
func (c *Catalog) flushTouches(ctx context.Context) {
	c.usedMu.Lock()
	used := c.used
	c.used = map[string]time.Time{}
	c.usedMu.Unlock()
	if len(used) == 0 {
		return
	}
	if err := c.st.TouchTokens(ctx, used); err != nil {
		if ctx.Err() == nil {
			c.opts.Logger.Warn("catalog: writing tokens' last-used times failed; retrying at the next interval",
				"tokens", len(used), "error", err)
		}
		c.usedMu.Lock()
		for id, at := range used {
			if later, ok := c.used[id]; !ok || at.After(later) {
				c.used[id] = at
			}
		}
		c.usedMu.Unlock()
		return
	}
	c.touchWrites.Add(1)
}
