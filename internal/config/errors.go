package config

import (
	"fmt"
	"strconv"
	"strings"
)

// FieldError is one problem with one configuration field. Path names the field
// from the top of what was decoded, e.g. "routes[2].upstream.nodes[0].port", and
// Msg says what is wrong with it in lower case, e.g. "must be between 1 and 65535".
type FieldError struct {
	Path string
	Msg  string
}

// Error implements error as "path: msg".
func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// FieldErrors is every problem found in one decode or validation pass. Callers
// range over it (after errors.As) to report each problem separately.
type FieldErrors []FieldError

// Error joins all problems with "; " so a single log line still shows them all.
func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap exposes each FieldError to errors.Is and errors.As.
func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// add records one problem.
func (es *FieldErrors) add(path, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	*es = append(*es, FieldError{Path: path, Msg: msg})
}

// err returns nil when nothing was recorded, so callers can `return errs.err()`
// without the typed-nil-in-interface trap.
func (es FieldErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// join builds a child path: a JSON key appended with "." (or ["key"] when the key
// would be ambiguous in a dotted path), or an index appended as [i].
func join(parent, key string) string {
	if !plainKey(key) {
		key = "[" + strconv.Quote(key) + "]"
		return parent + key
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// plainKey reports whether key can appear bare in a dotted path.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
