package health

import (
	"sync"
	"sync/atomic"
)

// Node states, lua-resty-healthcheck's four. A "mostly" state is the old
// state with counts toward the other one under way; traffic follows the
// first word: healthy and mostly_healthy nodes take traffic.
const (
	stHealthy uint32 = iota
	stMostlyHealthy
	stUnhealthy
	stMostlyUnhealthy
)

var stateNames = [...]string{"healthy", "mostly_healthy", "unhealthy", "mostly_unhealthy"}

// up reports whether a node in state st takes traffic.
func up(st uint32) bool { return st == stHealthy || st == stMostlyHealthy }

// Counter kinds: byte k of target.ctr holds kind k, like lua-resty-healthcheck's
// 32-bit multi-counter, so one atomic word updates and resets them together.
const (
	ctrSuccess = iota
	ctrHTTP
	ctrTCP
	ctrTimeout
)

// target is one node's health: its state and counters. It is shared by every
// View that lists the node and survives checker restarts (config changes) for
// as long as the node stays in its upstream.
type target struct {
	addr string // node "host:port", the identity across reloads
	host string // node host, what is dialled
	port int    // node port

	state atomic.Uint32
	ctr   atomic.Uint32
	// mu serialises state transitions; counting stays lock-free.
	mu    sync.Mutex
	owner *entry
}

// counter returns counter kind k.
func (t *target) counter(k int) int { return int(t.ctr.Load() >> (8 * k) & 0xff) }

// report counts one outcome of kind k against limit and moves the node's
// state, as lua-resty-healthcheck's incr_counter does: a success clears the
// failure counts and a failure the success count; the count reaching limit
// sets the state; a first contrary outcome makes it "mostly". A success on a
// fully healthy node, or a failure on a fully unhealthy one, is not counted,
// which keeps the steady state at one atomic load. limit 0 disables the kind.
func (t *target) report(k, limit int) {
	if limit <= 0 {
		return
	}
	success := k == ctrSuccess
	st := t.state.Load()
	if success && st == stHealthy || !success && st == stUnhealthy {
		return
	}
	shift := uint(8 * k)
	var c uint32
	for {
		old := t.ctr.Load()
		c = min(old>>shift&0xff+1, 0xff)
		var next uint32
		if success {
			next = c // failures cleared
		} else {
			next = old&^0xff&^(0xff<<shift) | c<<shift // success cleared
		}
		if t.ctr.CompareAndSwap(old, next) {
			break
		}
	}
	if want := transition(st, success, int(c) >= limit); want == st {
		return
	}
	t.mu.Lock()
	cur := t.state.Load()
	want := transition(cur, success, int(c) >= limit)
	t.state.Store(want)
	t.mu.Unlock()
	if up(cur) != up(want) && t.owner != nil {
		t.owner.flipped(t, want)
	}
}

// transition is the state after an outcome in state st; reached says the
// outcome's count hit its limit.
func transition(st uint32, success, reached bool) uint32 {
	switch {
	case success && (st == stHealthy || reached):
		return stHealthy
	case !success && (st == stUnhealthy || reached):
		return stUnhealthy
	case success && st == stUnhealthy:
		return stMostlyUnhealthy
	case !success && st == stHealthy:
		return stMostlyHealthy
	}
	return st
}
