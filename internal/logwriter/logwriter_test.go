package logwriter

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// output records each Write call; while gate is set, a Write waits on it.
type output struct {
	mu     sync.Mutex
	writes []string
	gate   chan struct{}
	inside chan struct{} // a signal per Write entered
}

func newOutput() *output { return &output{inside: make(chan struct{}, 100)} }

func (o *output) Write(p []byte) (int, error) {
	o.inside <- struct{}{}
	if o.gate != nil {
		<-o.gate
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes = append(o.writes, string(p))
	return len(p), nil
}

func (o *output) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.writes...)
}

// TestLinesArriveWholeAndInOrder: lines from many goroutines all reach the
// output, each whole, each goroutine's in the order it wrote them.
func TestLinesArriveWholeAndInOrder(t *testing.T) {
	out := &output{inside: make(chan struct{}, 1<<20)}
	w := New(out)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "writer=%d line=%d %s\n", g, i, strings.Repeat("x", i%300))
			}
		})
	}
	wg.Wait()
	w.Close()
	next := make([]int, writers)
	all := strings.Join(out.all(), "")
	for _, line := range strings.Split(strings.TrimSuffix(all, "\n"), "\n") {
		var g, i int
		parts := strings.SplitN(line, " ", 3)
		if len(parts) != 3 {
			t.Fatalf("line %q is not whole", line)
		}
		if _, err := fmt.Sscanf(parts[0]+" "+parts[1], "writer=%d line=%d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		pad := parts[2]
		if i != next[g] || len(pad) != i%300 {
			t.Fatalf("writer %d: line %d (padding %d) where %d was next", g, i, len(pad), next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines arrived, want %d", g, n, lines)
		}
	}
}

// TestLinesWrittenMeanwhileShareOneWrite: the lines that arrive while the
// output is busy go out in one write after it.
func TestLinesWrittenMeanwhileShareOneWrite(t *testing.T) {
	out := newOutput()
	out.gate = make(chan struct{})
	w := New(out)
	fmt.Fprintln(w, "first")
	<-out.inside // the first line's write has begun, and waits
	for i := range 10 {
		fmt.Fprintf(w, "meanwhile %d\n", i)
	}
	close(out.gate)
	w.Close()
	got := out.all()
	if len(got) != 2 || got[0] != "first\n" || strings.Count(got[1], "meanwhile") != 10 {
		t.Fatalf("writes = %q, want the first line, then the ten others in one", got)
	}
}

// TestWriteWaitsForRoom: with maxPending bytes queued behind a stalled
// output, the next Write waits until the output takes them.
func TestWriteWaitsForRoom(t *testing.T) {
	out := newOutput()
	out.gate = make(chan struct{})
	w := New(out)
	fmt.Fprintln(w, "stalls")
	<-out.inside
	line := bytes.Repeat([]byte("y"), 1024)
	for range maxPending / len(line) {
		w.Write(line)
	}
	returned := make(chan struct{})
	go func() {
		w.Write([]byte("past the bound\n"))
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("a Write past the bound returned while the output was stalled")
	case <-time.After(100 * time.Millisecond):
	}
	close(out.gate)
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the Write did not return once the output took the lines")
	}
	w.Close()
	if all := strings.Join(out.all(), ""); !strings.HasSuffix(all, "past the bound\n") || len(all) != len("stalls\n")+maxPending+len("past the bound\n") {
		t.Errorf("%d bytes arrived, ending %q", len(all), all[max(0, len(all)-20):])
	}
}

// TestCloseWritesTheRest: Close returns once every queued line is written;
// a Write after Close goes straight to the output.
func TestCloseWritesTheRest(t *testing.T) {
	out := newOutput()
	out.inside = make(chan struct{}, 1000)
	w := New(out)
	for i := range 100 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	w.Close()
	if n := strings.Count(strings.Join(out.all(), ""), "\n"); n != 100 {
		t.Fatalf("%d lines written by Close, want 100", n)
	}
	fmt.Fprintln(w, "after")
	if got := out.all(); got[len(got)-1] != "after\n" {
		t.Errorf("the last write is %q, want the line written after Close", got[len(got)-1])
	}
}
