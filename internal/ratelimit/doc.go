// Package ratelimit holds what the request-limiting plugins (limit-count,
// limit-req, limit-conn) share: resolving the limiting key as APISIX does,
// their rejections, a bounded lock-free table of per-key state, per-route
// scopes kept across reloads, and a pooled Redis client with its
// configuration, checks and rate-limited failure log.
//
// The limiting algorithms themselves stay in the plugins: fixed and sliding
// windows with batched leases, a leaky bucket and a concurrency counter have
// little in common beyond where their per-key state lives. limit-count keeps
// its own tables (their window semantics differ from Table's single word).
package ratelimit
