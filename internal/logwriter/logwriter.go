// Package logwriter passes log lines to the process's output from one
// goroutine of its own, so that the lines of concurrent requests share
// write calls instead of taking one each under the log handler's lock.
package logwriter

import (
	"io"
	"sync"
)

// maxPending is how many bytes of lines may wait for the output; a Write
// past it waits for room, so an output that stalls slows the writers
// instead of growing the memory.
const maxPending = 1 << 20

// Writer is an io.Writer for log lines. Write queues the line and returns;
// one goroutine writes everything queued to the output in one call, so the
// lines that arrive during one write go out together in the next, and a
// line that arrives while the output is idle goes out at once. Lines are
// written whole and in the order their Writes returned. Close writes what
// is left. A line that is still queued when the process is killed is
// lost: at most what arrived during the last write.
type Writer struct {
	out  io.Writer
	mu   sync.Mutex
	room sync.Cond // broadcast when the queued lines are taken
	// queued are the lines waiting for the output; closed: after Close,
	// lines go straight to the output.
	queued []byte
	closed bool
	wake   chan struct{} // one signal: there are lines queued
	done   chan struct{} // closed when the goroutine has written the last
}

// New returns a Writer of out and starts its goroutine; Close ends it.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.room.L = &w.mu
	go w.run()
	return w
}

// Write queues p, a copy, for the output. It does not report the output's
// errors, which a log line has no one to report to.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.queued) >= maxPending && !w.closed {
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // after the lines queued before
		return w.out.Write(p)
	}
	w.queued = append(w.queued, p...)
	select {
	case w.wake <- struct{}{}:
	default: // a signal is already waiting
	}
	w.mu.Unlock()
	return len(p), nil
}

func (w *Writer) run() {
	defer close(w.done)
	// Every line queued has a signal after it, which Close leaves in the
	// channel: the loop ends with the last lines written.
	var spare []byte
	for range w.wake {
		spare = w.writeQueued(spare)
	}
}

// writeQueued writes the queued lines, queuing the next ones in spare's
// memory, and returns the memory just written from for the next call.
func (w *Writer) writeQueued(spare []byte) []byte {
	w.mu.Lock()
	lines := w.queued
	w.queued = spare[:0]
	w.room.Broadcast()
	w.mu.Unlock()
	if len(lines) > 0 {
		_, _ = w.out.Write(lines)
	}
	return lines
}

// Close writes the lines queued and returns once they are written; later
// Writes go straight to the output.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.wake)
		w.room.Broadcast()
	}
	w.mu.Unlock()
	<-w.done
	return nil
}
