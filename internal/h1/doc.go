// Package h1 is sluice's strict, allocation-free HTTP/1.1 message codec.
//
// It parses request and response heads from a *bufio.Reader, frames message
// bodies (Content-Length, chunked, read-until-close) and writes chunked
// bodies and message heads. It owns no connections: the proxy engine reads
// and writes through the bufio types it passes in.
//
// # Why strict
//
// A gateway sits in front of other HTTP implementations. Any message that
// two parsers could frame differently is a request-smuggling vector
// (RFC 9112 §11.2), so every ambiguity is rejected rather than repaired:
//
//   - Content-Length together with Transfer-Encoding is rejected
//     (RFC 9112 §6.1, §6.3), never "chunked wins".
//   - Content-Length must be 1*DIGIT; a list or repeated field is accepted
//     only when every member is identical (RFC 9110 §8.6).
//   - A request Transfer-Encoding must end in exactly one "chunked"
//     (RFC 9112 §6.3 item 4, §7); other codings before it are valid HTTP
//     but not implemented, so they get 501 (RFC 9112 §6.1). Empty list
//     members in Transfer-Encoding are rejected although RFC 9110 §5.6.1
//     asks recipients to skip them: parsers disagree on them.
//   - obs-fold, whitespace before the colon, and CTLs in values are
//     rejected (RFC 9112 §5.1, §5.2, RFC 9110 §5.5).
//   - Every line, including chunk-size lines and the CRLF after chunk
//     data, must end in CRLF. A bare LF is rejected even though RFC 9112
//     §2.2 lets a recipient accept it: the lenient reading is exactly what
//     chunk-based smuggling exploits, and no real client needs it. A bare
//     CR is always rejected (RFC 9112 §2.2).
//
// Deliberate leniencies, none of which affects framing: empty lines before
// a request line are skipped (RFC 9112 §2.2, bounded by MaxRequestLine);
// a status line without " reason-phrase" is accepted (as nginx does); the
// request-target may contain any byte above SP except DEL and '#' (as nginx
// does; routing decides what a path may hold); an empty Host value is
// accepted (RFC 9112 §3.2 allows it). HTTP/1.0 requests need no Host.
//
// Upstream responses follow nginx: the only accepted Transfer-Encoding is
// a single "chunked", and anything ambiguous is an error the proxy turns
// into 502.
//
// # Memory
//
// Request, Response and BodyReader copy what they parse into buffers they
// own and reuse across calls, so steady-state parsing allocates nothing.
// Slices handed out (Method, Headers, Trailers…) stay valid until the next
// Reset or Read* call on the same value.
package h1
