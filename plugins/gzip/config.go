package gzip

import (
	"errors"
	"fmt"
)

// Config is gzip's configuration, field for field APISIX's schema
// (apisix/plugins/gzip.lua).
type Config struct {
	// Types lists the response Content-Types (without parameters) to
	// compress, or is the string "*" for every type. Default ["text/html"].
	Types any `json:"types"`
	// MinLength is the smallest Content-Length compressed; responses
	// without a Content-Length are compressed whatever their size. At least
	// 1, default 20.
	MinLength int `json:"min_length"`
	// CompLevel is the compression level, 1 (fastest) to 9 (smallest).
	// Default 1.
	CompLevel int `json:"comp_level"`
	// HTTPVersion is the lowest request HTTP version whose responses are
	// compressed: 1.1 or 1.0. Default 1.1.
	HTTPVersion float64 `json:"http_version"`
	// Buffers is nginx's gzip_buffers. Accepted for compatibility; sluice's
	// compressor sizes its own buffers.
	Buffers Buffers `json:"buffers"`
	// Vary adds `Vary: Accept-Encoding` to compressed responses. Default
	// false.
	Vary bool `json:"vary"`
}

// Buffers is nginx's gzip_buffers: number and size of the buffers.
type Buffers struct {
	// Number of buffers, at least 1. Default 32.
	Number int `json:"number"`
	// Size of each buffer in bytes, at least 1. Default 4096.
	Size int `json:"size"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{
		Types:       []any{"text/html"},
		MinLength:   20,
		CompLevel:   1,
		HTTPVersion: 1.1,
		Buffers:     Buffers{Number: 32, Size: 4096},
	}
}

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if _, _, err := types(c.Types); err != nil {
		return fmt.Errorf("types: %w", err)
	}
	if c.MinLength < 1 {
		return errors.New("min_length: must be >= 1")
	}
	if c.CompLevel < 1 || c.CompLevel > 9 {
		return errors.New("comp_level: must be between 1 and 9")
	}
	if c.HTTPVersion != 1.1 && c.HTTPVersion != 1.0 {
		return errors.New("http_version: must be 1.1 or 1.0")
	}
	if c.Buffers.Number < 1 {
		return errors.New("buffers.number: must be >= 1")
	}
	if c.Buffers.Size < 1 {
		return errors.New("buffers.size: must be >= 1")
	}
	return nil
}

// types reads the types field: all is true for "*", else list holds the
// types.
func types(v any) (all bool, list []string, err error) {
	errShape := errors.New(`must be "*" or a non-empty array of non-empty strings`)
	switch v := v.(type) {
	case string:
		if v == "*" {
			return true, nil, nil
		}
	case []any:
		if len(v) == 0 {
			return false, nil, errShape
		}
		list = make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok || s == "" {
				return false, nil, errShape
			}
			list = append(list, s)
		}
		return false, list, nil
	}
	return false, nil, errShape
}
