package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// UnmarshalJSON accepts both APISIX node forms. The map form
// {"127.0.0.1:8080": 1, "[::1]:80": 2, "example.com": 1} maps an address to a
// weight; an address without a port leaves Port 0, which means "the default port
// of the upstream's scheme". The map form is sorted by host, port and weight so
// that the same map always yields the same order (Go and Lua maps do not keep
// one). Unknown fields in the array form are rejected.
func (n *Nodes) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case len(data) == 0:
		return errors.New("nodes: empty value")
	case bytes.Equal(data, []byte("null")):
		*n = nil
		return nil
	case data[0] == '{':
		var m map[string]int
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("nodes: %w", err)
		}
		out := make(Nodes, 0, len(m))
		for addr, w := range m {
			host, port, err := parseNodeAddr(addr)
			if err != nil {
				return fmt.Errorf("nodes[%q]: %w", addr, err)
			}
			out = append(out, Node{Host: host, Port: port, Weight: w})
		}
		out.sort()
		*n = out
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var arr []Node
	if err := dec.Decode(&arr); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	if arr == nil {
		arr = []Node{} // `[]` is present-but-empty, which differs from absent
	}
	*n = arr
	return nil
}

func (n Nodes) sort() {
	slices.SortFunc(n, func(a, b Node) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Weight, b.Weight))
	})
}

// parseNodeAddr splits a map-form node address into host and port. It follows
// APISIX's address rules: "[v6]:port" and "[v6]" are bracketed IPv6, a bare
// address with two or more colons is IPv6 without a port, otherwise the part
// after the last colon is the port. IPv6 hosts are returned without brackets.
func parseNodeAddr(addr string) (host string, port int, err error) {
	var portStr string
	switch {
	case strings.HasPrefix(addr, "["):
		end := strings.IndexByte(addr, ']')
		if end < 0 {
			return "", 0, errors.New("invalid address: missing ']'")
		}
		host = addr[1:end]
		rest := addr[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", 0, errors.New("invalid address: unexpected text after ']'")
			}
			portStr = rest[1:]
			if portStr == "" {
				return "", 0, errors.New("invalid address: empty port")
			}
		}
	case strings.Count(addr, ":") >= 2:
		host = addr
	default:
		var found bool
		host, portStr, found = strings.Cut(addr, ":")
		if found && portStr == "" {
			return "", 0, errors.New("invalid address: empty port")
		}
	}
	if host == "" {
		return "", 0, errors.New("invalid address: missing host")
	}
	if portStr != "" {
		p, err := strconv.Atoi(portStr)
		if err != nil || p < 1 || p > 65535 || portStr[0] == '+' {
			return "", 0, fmt.Errorf("invalid port %q: must be between 1 and 65535", portStr)
		}
		port = p
	}
	return host, port, nil
}
