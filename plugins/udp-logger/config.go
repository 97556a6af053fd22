package udplogger

import (
	"errors"
	"fmt"

	"github.com/sluicegw/sluice/plugin/batch"
	"github.com/sluicegw/sluice/plugin/logentry"
)

// Config is udp-logger's configuration, with APISIX's field names.
type Config struct {
	// Host and Port are the UDP server's address. Required.
	Host string `json:"host"`
	Port *int   `json:"port,omitempty"`
	// Timeout, in seconds, bounds sending a batch.
	Timeout int `json:"timeout"`
	logentry.Settings
	batch.Config
}

// NewConfig returns a Config with APISIX's defaults.
func NewConfig() *Config {
	return &Config{Timeout: 3, Settings: logentry.NewSettings(), Config: batch.NewConfig("udp logger")}
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
	if c.Timeout < 1 {
		return fmt.Errorf("timeout: must be >= 1, got %d", c.Timeout)
	}
	if err := c.Settings.Validate(); err != nil {
		return err
	}
	return c.Config.Validate()
}
