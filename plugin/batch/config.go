package batch

import "fmt"

// Config is APISIX's batch processor configuration, the fields every
// batching logger accepts next to its own (apisix/utils/batch-processor.lua).
// Loggers embed it in their config so the fields sit at the top level, as in
// APISIX.
type Config struct {
	// Name labels the processor in logs; each logger has its own default
	// ("http logger", "tcp logger"...).
	Name string `json:"name"`
	// BatchMaxSize is the number of entries that triggers a send; 1 sends
	// every entry as it comes.
	BatchMaxSize int `json:"batch_max_size"`
	// InactiveTimeout, in seconds: a batch is sent once no entry came for
	// this long.
	InactiveTimeout int `json:"inactive_timeout"`
	// BufferDuration, in seconds: a batch is sent once its oldest entry is
	// this old, however busy the route.
	BufferDuration int `json:"buffer_duration"`
	// MaxRetryCount is how many times a failed send is retried before its
	// entries are dropped.
	MaxRetryCount int `json:"max_retry_count"`
	// RetryDelay, in seconds, is the wait before the first retry; later
	// retries double it (APISIX waits the same delay every time).
	RetryDelay int `json:"retry_delay"`
}

// Defaults are APISIX's.
const (
	DefaultBatchMaxSize    = 1000
	DefaultInactiveTimeout = 5
	DefaultBufferDuration  = 60
	DefaultMaxRetryCount   = 0
	DefaultRetryDelay      = 1
	// DefaultMaxPending is APISIX's max_pending_entries (plugin metadata):
	// how many entries may wait for delivery before new ones are dropped.
	DefaultMaxPending = 8192
)

// NewConfig returns APISIX's defaults with the logger's default name.
func NewConfig(name string) Config {
	return Config{
		Name:            name,
		BatchMaxSize:    DefaultBatchMaxSize,
		InactiveTimeout: DefaultInactiveTimeout,
		BufferDuration:  DefaultBufferDuration,
		MaxRetryCount:   DefaultMaxRetryCount,
		RetryDelay:      DefaultRetryDelay,
	}
}

// Validate checks the fields as APISIX's schema does.
func (c *Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{
		{"batch_max_size", c.BatchMaxSize, 1},
		{"inactive_timeout", c.InactiveTimeout, 1},
		{"buffer_duration", c.BufferDuration, 1},
		{"max_retry_count", c.MaxRetryCount, 0},
		{"retry_delay", c.RetryDelay, 0},
	} {
		if f.v < f.min {
			return fmt.Errorf("%s: must be >= %d, got %d", f.name, f.min, f.v)
		}
	}
	return nil
}

// Key renders the fields, for keys of objects kept across configurations
// (plugin.Lasting): two loggers with equal settings may share a processor.
func (c Config) Key() string {
	return fmt.Sprintf("name=%q size=%d inactive=%d buffer=%d retries=%d delay=%d",
		c.Name, c.BatchMaxSize, c.InactiveTimeout, c.BufferDuration, c.MaxRetryCount, c.RetryDelay)
}
