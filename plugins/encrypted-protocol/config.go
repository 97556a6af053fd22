package encryptedprotocol

import (
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// DefaultMaxBodyBytes bounds the request and response bodies the plugin
// holds in memory: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// maxBodyLimit keeps max_body_bytes sane: the body is buffered whole.
const maxBodyLimit = 1 << 30

// Config is encrypted-protocol's route (or service, global rule)
// configuration.
type Config struct {
	// Key is the AES-256 key, base64 (standard alphabet, padded) of exactly
	// 32 bytes. It may be left out when every client is a consumer that
	// carries its own key; a request with neither is rejected with 403.
	Key string `json:"key,omitempty"`
	// MaxBodyBytes bounds the encrypted request body and the plaintext
	// response body held in memory. Default 1048576 (1 MiB).
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// ContentType is the Content-Type of encrypted responses. Default
	// "application/octet-stream".
	ContentType string `json:"content_type"`
	// EncryptResponse encrypts the response body too. Default true.
	EncryptResponse bool `json:"encrypt_response"`
}

// NewConfig returns a Config with its defaults.
func NewConfig() *Config {
	return &Config{
		MaxBodyBytes:    DefaultMaxBodyBytes,
		ContentType:     "application/octet-stream",
		EncryptResponse: true,
	}
}

// Validate checks c without side effects; errors name the field.
func (c *Config) Validate() error {
	if c.Key != "" {
		if err := validateKey(c.Key); err != nil {
			return fmt.Errorf("key: %w", err)
		}
	}
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > maxBodyLimit {
		return fmt.Errorf("max_body_bytes: must be between 1 and %d", maxBodyLimit)
	}
	if _, _, err := mime.ParseMediaType(c.ContentType); err != nil {
		return errors.New("content_type: must be a media type, e.g. application/octet-stream")
	}
	return nil
}

// ConsumerConfig is the key a consumer keeps for encrypted-protocol. When the
// authenticated consumer has one, it is used instead of the route's key.
type ConsumerConfig struct {
	// Key is the consumer's AES-256 key, base64 of exactly 32 bytes.
	Key string `json:"key"`
}

// NewConsumerConfig returns an empty ConsumerConfig.
func NewConsumerConfig() *ConsumerConfig { return &ConsumerConfig{} }

// Validate checks c without side effects.
func (c *ConsumerConfig) Validate() error {
	if c.Key == "" {
		return errors.New("key: must not be empty")
	}
	if err := validateKey(c.Key); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	return nil
}

// validateKey checks that k is base64 of a 32-byte key. The message never
// echoes the key: it is a secret, and errors end up in logs and the Admin API.
func validateKey(k string) error {
	_, err := decodeKey(k)
	return err
}

func decodeKey(k string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return nil, errors.New("must be standard base64")
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("must decode to %d bytes, got %d", KeySize, len(b))
	}
	return b, nil
}
