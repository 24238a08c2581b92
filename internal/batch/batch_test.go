package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Calls made at once share batches, each gets its own result, a batch that
// fails is written again call by call so that only the bad call fails, and
// after close a call is refused.
func TestBatcher(t *testing.T) {
	// The first batch holds the only writer until every other call has
	// started, so that they wait together.
	inFirst, release := make(chan struct{}), make(chan struct{})
	first := true
	var mu sync.Mutex
	var sizes []int
	write := func(ctx context.Context, in []int) ([]string, error) {
		if first { // one writer: no race
			first = false
			close(inFirst)
			<-release
		}
		mu.Lock()
		sizes = append(sizes, len(in))
		mu.Unlock()
		out := make([]string, len(in))
		for i, n := range in {
			if n == 13 {
				return nil, errors.New("13 cannot be written")
			}
			out[i] = fmt.Sprint("#", n)
		}
		return out, nil
	}
	b := New(1, 50, 1000, nil, time.Minute, write)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const calls = 40
	results := make([]string, calls)
	errs := make([]error, calls)
	var done, started sync.WaitGroup
	done.Go(func() { results[0], errs[0] = b.Do(ctx, 0) })
	<-inFirst
	for i := 1; i < calls; i++ {
		started.Add(1)
		done.Go(func() {
			started.Done()
			results[i], errs[i] = b.Do(ctx, i)
		})
	}
	started.Wait()
	close(release)
	done.Wait()
	for i := range calls {
		switch {
		case i == 13:
			if errs[i] == nil {
				t.Errorf("call 13 succeeded: %q", results[i])
			}
		case errs[i] != nil:
			t.Errorf("call %d failed with the batch of call 13: %v", i, errs[i])
		case results[i] != fmt.Sprint("#", i):
			t.Errorf("call %d got %q", i, results[i])
		}
	}
	mu.Lock()
	largest := 0
	for _, n := range sizes {
		largest = max(largest, n)
	}
	mu.Unlock()
	if largest < 2 {
		t.Errorf("batches of %v calls: no two calls waiting at once shared one", sizes)
	}

	b.Close(ctx)
	if _, err := b.Do(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("a call after close: %v, want ErrClosed", err)
	}
}

// A lingering writer waits for calls that come after its first, up to a
// full batch, so that calls made one after another share one write; Close
// ends its wait.
func TestLinger(t *testing.T) {
	var mu sync.Mutex
	var batches [][]int
	written := func() [][]int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(batches)
	}
	write := func(ctx context.Context, in []int) ([]int, error) {
		mu.Lock()
		batches = append(batches, slices.Clone(in))
		mu.Unlock()
		return in, nil
	}
	// Far longer than the test: only a full batch, or Close, ends it.
	b := New(1, 3, 1000, nil, time.Minute, write).Linger(time.Hour)
	var wg sync.WaitGroup
	do := func(i int) {
		wg.Go(func() {
			out, err := b.Do(context.Background(), i)
			if errors.Is(err, ErrClosed) && i == 3 {
				return // not handed over before Close
			}
			if err != nil || out != i {
				t.Errorf("Do(%d) = %d, %v", i, out, err)
			}
		})
	}
	do(0)
	// Without lingering the first call would be written alone by now.
	time.Sleep(50 * time.Millisecond)
	if got := written(); len(got) != 0 {
		t.Fatalf("written %v before the batch was full", got)
	}
	do(1)
	do(2)
	deadline := time.Now().Add(10 * time.Second)
	for len(written()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := written(); len(got) != 1 || len(got[0]) != 3 {
		t.Fatalf("batches %v, want one of the 3 calls", got)
	}
	// A call lingering when Close comes is written then, not an hour
	// later.
	do(3)
	b.Close(context.Background())
	wg.Wait()
	if got := written(); len(got) > 2 || (len(got) == 2 && !slices.Equal(got[1], []int{3})) {
		t.Fatalf("batches %v, want the last call alone, or refused, at Close", got)
	}
}
