package catalog

import "context"

// BackgroundPolls returns how many polls the goroutine has made.
func BackgroundPolls(c *Catalog) int64 { return c.backgroundPolls.Load() }

// TouchWrites returns how many writes of last-used times succeeded.
func TouchWrites(c *Catalog) int64 { return c.touchWrites.Load() }

// FlushTouches writes the recorded last-used times now.
func FlushTouches(ctx context.Context, c *Catalog) { c.flushTouches(ctx) }
