// Package batch hands the calls of many goroutines to a few writers in
// batches, so that under load many calls share one round trip to a
// database or a Redis server, while a lone call is written at once.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Batcher hands the calls of many goroutines to a few writers, in
// batches: a writer takes one call, and with it every other already
// waiting, up to maxCalls calls and maxWeight of their weight. So a lone
// call is written at once, without a timer, and under load many share one
// round trip to the database. A batch that fails is written again call by
// call, so that a call that cannot be written fails only itself.
type Batcher[In, Out any] struct {
	calls     chan *batchCall[In, Out]
	closing   chan struct{}
	closeOnce sync.Once
	writers   sync.WaitGroup
	// maxCalls and maxWeight bound a batch; weight is a call's weight,
	// nil for 1 each.
	maxCalls  int
	maxWeight int
	weight    func(In) int
	// timeout bounds writing a batch.
	timeout time.Duration
	// linger is how long a writer waits for more calls after its first
	// (Linger); 0: not at all.
	linger time.Duration
	// write writes a batch, returning one result per call, in order, or
	// an error for the whole batch.
	write func(ctx context.Context, in []In) ([]Out, error)
}

// ErrClosed is Do's error after Close.
var ErrClosed = errors.New("batch: closed")

// batchCall is one call waiting for its batch.
type batchCall[In, Out any] struct {
	in In
	// out and err are set before done is closed.
	out  Out
	err  error
	done chan struct{}
}

// New starts writers goroutines writing batches with write: at most
// maxCalls calls, and maxWeight of their weight (weight nil: 1 each), per
// batch; timeout bounds writing one. write returns one result per call, in
// order, or an error for the whole batch.
func New[In, Out any](writers, maxCalls, maxWeight int, weight func(In) int, timeout time.Duration, write func(context.Context, []In) ([]Out, error)) *Batcher[In, Out] {
	b := &Batcher[In, Out]{
		calls:     make(chan *batchCall[In, Out]),
		closing:   make(chan struct{}),
		maxCalls:  maxCalls,
		maxWeight: maxWeight,
		weight:    weight,
		timeout:   timeout,
		write:     write,
	}
	for range writers {
		b.writers.Add(1)
		go b.run()
	}
	return b
}

// Linger makes each writer, having taken a call, wait up to d for more
// calls to fill its batch, instead of writing what is already waiting: for
// calls that may wait, so that under a moderate load they share round
// trips too. Call it before the first Do.
func (b *Batcher[In, Out]) Linger(d time.Duration) *Batcher[In, Out] {
	b.linger = d
	return b
}

// Do hands in to a writer and returns its result once written. It returns
// ErrClosed after Close, and ctx's error when ctx ends first: before it
// is handed over (in is not written), or after (the batch goes on, and
// may write in).
func (b *Batcher[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		// Not handed over: a select below would pick at random.
		return zero, fmt.Errorf("waiting for a writer: %w", err)
	}
	c := &batchCall[In, Out]{in: in, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-b.closing:
		return zero, ErrClosed
	case <-ctx.Done():
		return zero, fmt.Errorf("waiting for a writer: %w", ctx.Err())
	}
	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		return zero, fmt.Errorf("waiting for the batch to be written: %w", ctx.Err())
	}
}

// Close ends the writers, and waits for the batches being written as long
// as ctx allows; a batch ends within timeout anyway.
func (b *Batcher[In, Out]) Close(ctx context.Context) {
	b.closeOnce.Do(func() { close(b.closing) })
	written := make(chan struct{})
	go func() {
		b.writers.Wait()
		close(written)
	}()
	select {
	case <-written:
	case <-ctx.Done():
	}
}

// run writes batches until Close.
func (b *Batcher[In, Out]) run() {
	defer b.writers.Done()
	for {
		var first *batchCall[In, Out]
		select {
		case first = <-b.calls:
		case <-b.closing:
			return
		}
		batch := []*batchCall[In, Out]{first}
		weight := b.weightOf(first.in)
		var lingering <-chan time.Time
		if b.linger > 0 {
			lingering = time.After(b.linger)
		}
	fill:
		for len(batch) < b.maxCalls && weight < b.maxWeight {
			var c *batchCall[In, Out]
			if lingering == nil {
				select {
				case c = <-b.calls:
				default:
					break fill
				}
			} else {
				select {
				case c = <-b.calls:
				case <-lingering:
					break fill
				case <-b.closing:
					break fill
				}
			}
			batch = append(batch, c)
			weight += b.weightOf(c.in)
		}
		b.writeBatch(batch)
	}
}

func (b *Batcher[In, Out]) weightOf(in In) int {
	if b.weight == nil {
		return 1
	}
	return b.weight(in)
}

// writeBatch writes batch, or, when that fails, each of its calls alone.
func (b *Batcher[In, Out]) writeBatch(batch []*batchCall[In, Out]) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	in := make([]In, len(batch))
	for i, c := range batch {
		in[i] = c.in
	}
	out, err := b.write(ctx, in)
	if err == nil && len(out) != len(in) {
		err = fmt.Errorf("a batch of %d calls wrote %d results", len(in), len(out))
	}
	if err != nil && len(batch) > 1 {
		for _, c := range batch {
			b.writeBatch([]*batchCall[In, Out]{c})
		}
		return
	}
	for i, c := range batch {
		if err != nil {
			c.err = err
		} else {
			c.out = out[i]
		}
		close(c.done)
	}
}
