package shdict

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// MinCapacity is the smallest capacity Validate accepts, OpenResty's
// hard-coded minimum for lua_shared_dict.
const MinCapacity = 8 << 10

// Validate checks one shared_dicts entry of the gateway configuration. It is
// pure, so the Admin API and Define run the same check.
func Validate(name string, capacity int) error {
	if name == "" {
		return errors.New("shared_dicts: name must not be empty")
	}
	if capacity < MinCapacity {
		return fmt.Errorf("shared_dicts.%s: size %d is below the minimum of %d bytes", name, capacity, MinCapacity)
	}
	return nil
}

// ParseSize parses a size the way nginx does for lua_shared_dict: a number of
// bytes with an optional k, m or g suffix (any case), e.g. "10m".
func ParseSize(s string) (int, error) {
	mult := 1
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, num = 1<<10, s[:n-1]
		case 'm', 'M':
			mult, num = 1<<20, s[:n-1]
		case 'g', 'G':
			mult, num = 1<<30, s[:n-1]
		}
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: want bytes with an optional k, m or g suffix", s)
	}
	return n * mult, nil
}

// Registry holds a gateway's shared dictionaries by name. It belongs to the
// runtime, not to a configuration snapshot, so dictionaries keep their
// contents across reloads as in OpenResty.
type Registry struct {
	mu    sync.RWMutex
	dicts map[string]*Dict
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{dicts: make(map[string]*Dict)}
}

// Define returns the dictionary called name, creating it if needed. A
// dictionary that already exists with the same capacity is returned as is,
// contents included; with another capacity it is replaced by an empty one,
// as nginx does when a shared zone's size changes on reload. Holders of the
// old *Dict keep using it until they are rebuilt.
func (r *Registry) Define(name string, capacity int) (*Dict, error) {
	if err := Validate(name, capacity); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.dicts[name]; d != nil && d.capacity == capacity {
		return d, nil
	}
	d := New(name, capacity)
	r.dicts[name] = d
	return d, nil
}

// Get returns the dictionary called name (ngx.shared[name]). Plugins should
// look it up once when they are built, not per request.
func (r *Registry) Get(name string) (*Dict, bool) {
	r.mu.RLock()
	d, ok := r.dicts[name]
	r.mu.RUnlock()
	return d, ok
}

// Remove forgets the dictionary called name, for a reload whose
// configuration no longer lists it.
func (r *Registry) Remove(name string) {
	r.mu.Lock()
	delete(r.dicts, name)
	r.mu.Unlock()
}

// Names returns the names of the defined dictionaries, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	names := make([]string, 0, len(r.dicts))
	for n := range r.dicts {
		names = append(names, n)
	}
	r.mu.RUnlock()
	sort.Strings(names)
	return names
}
