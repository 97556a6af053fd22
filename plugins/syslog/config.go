package syslog

import (
	"errors"
	"fmt"

	"github.com/sluicegw/sluice/plugin/batch"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Config is syslog's configuration, with APISIX's field names.
type Config struct {
	// Host and Port are the syslog server's address. Required.
	Host string `json:"host"`
	Port *int   `json:"port,omitempty"`
	// FlushLimit is the most bytes written at once over TCP (whole
	// messages; a longer message goes alone).
	FlushLimit int `json:"flush_limit"`
	// DropLimit is the most bytes one batch may hold; messages past it are
	// dropped (and counted).
	DropLimit int `json:"drop_limit"`
	// Timeout, in milliseconds, bounds connecting and each write.
	Timeout int `json:"timeout"`
	// SockType is "tcp" or "udp".
	SockType string `json:"sock_type"`
	// PoolSize is accepted for APISIX compatibility (minimum 5); sluice
	// keeps one connection per server, since one goroutine sends.
	PoolSize int `json:"pool_size"`
	// TLS wraps the TCP connection in TLS (certificate not verified).
	TLS bool `json:"tls"`
	logentry.Settings
	batch.Config
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{FlushLimit: 4096, DropLimit: 1048576, Timeout: 3000, SockType: "tcp", PoolSize: 5,
		Settings: logentry.NewSettings(), Config: batch.NewConfig("sys logger")}
}

// Validate checks the config as APISIX's schema does.
func (c *Config) Validate() error {
	if c.Host == "" {
		return errors.New("host: is required")
	}
	if c.Port == nil {
		return errors.New("port: is required")
	}
	if *c.Port < 0 || *c.Port > 65535 {
		return fmt.Errorf("port: must be between 0 and 65535, got %d", *c.Port)
	}
	if c.FlushLimit < 1 {
		return fmt.Errorf("flush_limit: must be >= 1, got %d", c.FlushLimit)
	}
	if c.Timeout < 1 {
		return fmt.Errorf("timeout: must be >= 1, got %d", c.Timeout)
	}
	if c.SockType != "tcp" && c.SockType != "udp" {
		return fmt.Errorf("sock_type: must be one of tcp, udp, got %q", c.SockType)
	}
	if c.PoolSize < 5 {
		return fmt.Errorf("pool_size: must be >= 5, got %d", c.PoolSize)
	}
	if c.TLS && c.SockType == "udp" {
		return errors.New("tls: not available with sock_type udp")
	}
	if err := c.Settings.Validate(); err != nil {
		return err
	}
	return c.Config.Validate()
}
