// Package logbuf is a log destination for tests: a buffer that the code
// under test writes from many goroutines while the test reads it, with the
// JSON log lines decoded on demand. It depends on nothing of Gwook's, so
// any package's tests can use it.
package logbuf

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// Buffer collects log output written from many goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns each JSON log line whose "msg" is msg, decoded.
func (b *Buffer) Lines(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}
