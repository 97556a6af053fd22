// Package accesslog writes one JSON line per request without slowing requests:
// the request goroutine formats into a pooled buffer and hands it to a writer
// goroutine; when the writer falls behind, lines are dropped and counted rather
// than blocking traffic.
package accesslog

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Entry is what one access-log line records.
type Entry struct {
	Time            time.Time
	Client          string
	Method          string
	Host            string
	URI             string
	Status          int
	Bytes           int64
	RouteID         string
	UpstreamAddr    string
	UpstreamStatus  int
	UpstreamLatency time.Duration // zero when no upstream was reached
	Latency         time.Duration
}

// lineBufSize fits a typical line; longer lines grow the buffer, which then
// returns to the pool at its new size only up to maxPooledLine.
const (
	lineBufSize   = 512
	maxPooledLine = 16 << 10
	queueLen      = 4096
)

// Logger is an asynchronous JSON-lines access logger. A nil *Logger is valid and
// logs nothing, so "off" costs one nil check.
type Logger struct {
	queue   chan *[]byte
	pool    sync.Pool
	dropped atomic.Uint64
	done    chan struct{}
	w       *bufio.Writer
	closer  io.Closer
}

// New starts a logger writing to w (closed by Close when it is an io.Closer).
func New(w io.Writer) *Logger {
	l := &Logger{
		queue: make(chan *[]byte, queueLen),
		done:  make(chan struct{}),
		w:     bufio.NewWriterSize(w, 64<<10),
	}
	if c, ok := w.(io.Closer); ok {
		l.closer = c
	}
	l.pool.New = func() any { b := make([]byte, 0, lineBufSize); return &b }
	go l.run()
	return l
}

// Dropped is the number of lines dropped because the writer fell behind.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Log formats e and queues it; it never blocks.
func (l *Logger) Log(e *Entry) {
	if l == nil {
		return
	}
	bp := l.pool.Get().(*[]byte)
	*bp = appendEntry((*bp)[:0], e)
	select {
	case l.queue <- bp:
	default:
		l.dropped.Add(1)
		l.put(bp)
	}
}

func (l *Logger) put(bp *[]byte) {
	if cap(*bp) <= maxPooledLine {
		l.pool.Put(bp)
	}
}

func (l *Logger) run() {
	defer close(l.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case bp, ok := <-l.queue:
			if !ok {
				l.w.Flush()
				return
			}
			l.w.Write(*bp)
			l.put(bp)
		case <-tick.C:
			l.w.Flush()
		}
	}
}

// Close flushes queued lines and stops the writer. Log must not be called after.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	close(l.queue)
	<-l.done
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","client":`...)
	b = appendString(b, e.Client)
	b = append(b, `,"method":`...)
	b = appendString(b, e.Method)
	b = append(b, `,"host":`...)
	b = appendString(b, e.Host)
	b = append(b, `,"uri":`...)
	b = appendString(b, e.URI)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"route_id":`...)
	b = appendString(b, e.RouteID)
	b = append(b, `,"upstream_addr":`...)
	b = appendString(b, e.UpstreamAddr)
	b = append(b, `,"upstream_status":`...)
	b = strconv.AppendInt(b, int64(e.UpstreamStatus), 10)
	b = append(b, `,"upstream_latency_ms":`...)
	b = strconv.AppendFloat(b, float64(e.UpstreamLatency.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Latency.Microseconds())/1000, 'f', 3, 64)
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string. Invalid UTF-8 and control bytes are
// escaped so a hostile request cannot break the line format.
func appendString(b []byte, s string) []byte {
	const hexdigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexdigits[c>>4], hexdigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
