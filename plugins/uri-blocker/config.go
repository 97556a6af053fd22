package uriblocker

import (
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Config is the uri-blocker plugin's configuration, field for field APISIX's
// schema (apisix/plugins/uri-blocker.lua).
type Config struct {
	// BlockRules are regular expressions matched, unanchored, against the
	// request URI as the client sent it (path and query string, nginx's
	// $request_uri); a request matching any of them is rejected. Required.
	// An empty list matches, and so blocks, every request, as in APISIX.
	BlockRules []string `json:"block_rules"`
	// RejectedCode is the status of a rejection, from 200 to 599.
	RejectedCode int `json:"rejected_code"`
	// RejectedMsg, when set, is returned as {"error_msg": ...}; otherwise a
	// rejection has an empty body.
	RejectedMsg *string `json:"rejected_msg,omitempty"`
	// CaseInsensitive makes every rule ignore case.
	CaseInsensitive bool `json:"case_insensitive"`
	// Category is accepted because APISIX stores its default with the
	// plugin's config; it has no effect.
	Category string `json:"category,omitempty"`
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{RejectedCode: 403, Category: "security"}
}

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if c.BlockRules == nil {
		return errors.New("block_rules: is required")
	}
	for i, re := range c.BlockRules {
		if re == "" {
			return fmt.Errorf("block_rules[%d]: must not be empty", i)
		}
		if utf8.RuneCountInString(re) > 4096 {
			return fmt.Errorf("block_rules[%d]: length must be at most 4096", i)
		}
		for j := range i {
			if c.BlockRules[j] == re {
				return fmt.Errorf("block_rules[%d]: duplicate of block_rules[%d]", i, j)
			}
		}
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("block_rules[%d]: invalid regular expression: %w", i, err)
		}
	}
	// APISIX only sets a minimum; a status must have three digits in HTTP.
	if c.RejectedCode < 200 || c.RejectedCode > 599 {
		return fmt.Errorf("rejected_code: must be between 200 and 599, got %d", c.RejectedCode)
	}
	if c.RejectedMsg != nil && *c.RejectedMsg == "" {
		return errors.New("rejected_msg: must not be empty")
	}
	return nil
}
