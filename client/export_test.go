package client

import (
	"context"
	"time"
)

// WithPause replaces the Client's wait before a retry (tests record the
// waits instead of waiting).
func WithPause(pause func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) { c.pause = pause }
}

// RetryWait is retryWait, for tests.
var RetryWait = retryWait
