package consumerrestriction

import (
	"errors"
	"fmt"
	"strings"
)

// Config is consumer-restriction's configuration. At least one of
// Blacklist, Whitelist and AllowedByMethods must be set.
type Config struct {
	// Type is what the lists name: "consumer_name" (the default),
	// "consumer_group_id", "service_id" or "route_id".
	Type string `json:"type"`
	// Blacklist rejects the listed values. At least 1 item when set.
	Blacklist []string `json:"blacklist,omitempty"`
	// Whitelist rejects every value that is not listed. At least 1 item
	// when set.
	Whitelist []string `json:"whitelist,omitempty"`
	// AllowedByMethods limits the methods a value may use; values not named
	// by any rule may use every method. It is not consulted for a value in
	// Whitelist.
	AllowedByMethods []MethodRule `json:"allowed_by_methods,omitempty"`
	// RejectedCode is the status of a rejection. Default 403.
	RejectedCode int `json:"rejected_code"`
	// RejectedMsg replaces the rejection's message, which is by default
	// "The <type> is forbidden.".
	RejectedMsg *string `json:"rejected_msg,omitempty"`
}

// MethodRule lists the methods one value (a consumer name, or whatever Type
// says) may use.
type MethodRule struct {
	// User is the value the rule is for.
	User string `json:"user"`
	// Methods are the allowed methods, e.g. ["GET", "POST"]. At least 1
	// item when set.
	Methods []string `json:"methods,omitempty"`
}

// The values Type may take.
const (
	TypeConsumerName    = "consumer_name"
	TypeConsumerGroupID = "consumer_group_id"
	TypeServiceID       = "service_id"
	TypeRouteID         = "route_id"
)

// methods are the methods APISIX's schema allows (schema_def method_schema).
var methods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Type: TypeConsumerName, RejectedCode: 403}
}

// Validate checks c without side effects.
func (c *Config) Validate() error {
	switch c.Type {
	case TypeConsumerName, TypeConsumerGroupID, TypeServiceID, TypeRouteID:
	default:
		return errors.New("type: must be one of consumer_name, service_id, route_id, consumer_group_id")
	}
	if c.Blacklist == nil && c.Whitelist == nil && c.AllowedByMethods == nil {
		return errors.New("must set at least one of blacklist, whitelist or allowed_by_methods")
	}
	if c.Blacklist != nil && len(c.Blacklist) == 0 {
		return errors.New("blacklist: must have at least 1 item")
	}
	if c.Whitelist != nil && len(c.Whitelist) == 0 {
		return errors.New("whitelist: must have at least 1 item")
	}
	for i, r := range c.AllowedByMethods {
		if r.Methods != nil && len(r.Methods) == 0 {
			return fmt.Errorf("allowed_by_methods[%d].methods: must have at least 1 item", i)
		}
		for j, m := range r.Methods {
			if !isMethod(m) {
				return fmt.Errorf("allowed_by_methods[%d].methods[%d]: must be one of %s", i, j, strings.Join(methods, ", "))
			}
		}
	}
	// APISIX only sets a minimum; sluice also caps the code at 599 so that
	// it is a status an HTTP response can carry.
	if c.RejectedCode < 200 || c.RejectedCode > 599 {
		return errors.New("rejected_code: must be between 200 and 599")
	}
	return nil
}

func isMethod(m string) bool {
	for _, x := range methods {
		if m == x {
			return true
		}
	}
	return false
}
