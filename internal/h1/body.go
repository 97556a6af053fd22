package h1

import (
	"bufio"
	"bytes"
	"io"
)

// maxChunkLine bounds a chunk-size line, extensions included (RFC 9112
// §7.1.1 lets a recipient limit extension length).
const maxChunkLine = 4096

const (
	chSize     = iota // expecting a chunk-size line
	chData            // inside chunk data, remain bytes left
	chDataEnd         // expecting the CRLF after chunk data
	chTrailers        // expecting the trailer section
	chDone            // body complete
)

// BodyReader is an io.Reader over one message body, framed by
// Content-Length, the chunked transfer coding, or the end of the
// connection. It never reads past the end of the body, so br can be used
// for the next message afterwards. The zero value must be Reset before use.
//
// For chunked bodies it enforces RFC 9112 §7.1 strictly: chunk-size is
// 1*HEXDIG without sign, prefix or surrounding space (only BWS before a
// ';'), extensions are well-formed and bounded, chunk data is followed by
// exactly CRLF, and trailers follow the header rules and Limits. Every
// violation is an *Error with Status 400 (a proxy reading an upstream body
// answers 502 instead); the error is sticky.
type BodyReader struct {
	// Limits bounds the trailer section (MaxHeaderBytes, MaxHeaderCount).
	// Zero means the defaults. It is kept across Reset.
	Limits Limits

	br       *bufio.Reader
	mode     int
	remain   int64
	state    int
	err      error
	line     []byte  // chunk-size line split across bufio fills
	tbuf     []byte  // trailer section bytes
	ends     []int32 // end offsets of the trailer lines in tbuf
	trailers []Header
}

// Reset prepares b to read one body from br. mode is BodyNone, BodyLength
// (contentLength bytes), BodyChunked or BodyUntilClose.
func (b *BodyReader) Reset(br *bufio.Reader, mode int, contentLength int64) {
	b.br, b.mode, b.remain, b.state, b.err = br, mode, 0, chSize, nil
	b.trailers = b.trailers[:0]
	b.tbuf = b.tbuf[:0]
	switch mode {
	case BodyLength:
		if contentLength < 0 {
			contentLength = 0
		}
		b.remain = contentLength
		if contentLength == 0 {
			b.err = io.EOF
		}
	case BodyChunked, BodyUntilClose:
	default:
		b.err = io.EOF
	}
}

// Trailers returns the trailer fields of a chunked body, valid once Read
// has returned io.EOF and until the next Reset. Fields that must not be
// trailers (RFC 9110 §6.5.1) are returned too; the caller filters them.
func (b *BodyReader) Trailers() []Header { return b.trailers }

// Done reports whether the whole body has been read (Read returned, or
// would return, io.EOF).
func (b *BodyReader) Done() bool { return b.err == io.EOF }

// Read reads body bytes. It returns io.EOF at the end of the body, possibly
// together with the last bytes; io.ErrUnexpectedEOF if the connection
// closes early (except for BodyUntilClose, where that is the end).
func (b *BodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	switch b.mode {
	case BodyLength:
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := b.br.Read(p)
		b.remain -= int64(n)
		switch {
		case b.remain == 0:
			err = io.EOF
		case err == io.EOF:
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	case BodyUntilClose:
		n, err := b.br.Read(p)
		b.err = err
		return n, err
	}
	return b.readChunked(p)
}

func (b *BodyReader) readChunked(p []byte) (int, error) {
	for {
		switch b.state {
		case chSize:
			if err := b.readChunkSize(); err != nil {
				return 0, b.fail(err)
			}
		case chData:
			if int64(len(p)) > b.remain {
				p = p[:b.remain]
			}
			n, err := b.br.Read(p)
			b.remain -= int64(n)
			if err != nil {
				return n, b.fail(err)
			}
			if b.remain == 0 {
				b.state = chDataEnd
				// Finish the chunk, and the body if it ends here,
				// without blocking: the caller then sees io.EOF with
				// the last bytes and knows the connection is free.
				if err := b.advanceBuffered(); err != nil {
					return n, b.fail(err)
				}
				if b.state == chDone {
					b.err = io.EOF
					return n, io.EOF
				}
			}
			if n > 0 {
				return n, nil
			}
			// A zero-byte read from br: report it rather than spin.
			return 0, nil
		case chDataEnd:
			if err := b.readDataEnd(); err != nil {
				return 0, b.fail(err)
			}
		case chTrailers:
			if err := b.readTrailers(); err != nil {
				return 0, b.fail(err)
			}
		default:
			b.err = io.EOF
			return 0, io.EOF
		}
	}
}

func (b *BodyReader) fail(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	b.err = err
	return err
}

// advanceBuffered moves past the data CRLF, the next chunk-size line and an
// empty trailer section, as far as br already holds the bytes.
func (b *BodyReader) advanceBuffered() error {
	if b.br.Buffered() < 2 {
		return nil
	}
	if err := b.readDataEnd(); err != nil {
		return err
	}
	buf, _ := b.br.Peek(min(b.br.Buffered(), maxChunkLine))
	if bytes.IndexByte(buf, '\n') < 0 {
		return nil
	}
	if err := b.readChunkSize(); err != nil {
		return err
	}
	if b.state == chTrailers && b.br.Buffered() >= 2 {
		if buf, _ := b.br.Peek(2); buf[0] == '\r' && buf[1] == '\n' {
			return b.readTrailers()
		}
	}
	return nil
}

// readDataEnd consumes the CRLF that must follow chunk data (RFC 9112
// §7.1).
func (b *BodyReader) readDataEnd() error {
	crlf, err := b.br.Peek(2)
	if err != nil {
		return err
	}
	if crlf[0] != '\r' || crlf[1] != '\n' {
		return errorf(400, "chunk data not followed by CRLF")
	}
	b.br.Discard(2)
	b.state = chSize
	return nil
}

// readChunkSize reads and parses one chunk-size line.
func (b *BodyReader) readChunkSize() error {
	line, err := b.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// Rare: the line is longer than br's buffer. Collect it.
		var tooLong bool
		b.line, tooLong, err = appendLine(b.br, append(b.line[:0], line...), maxChunkLine-len(line))
		if tooLong {
			return errorf(400, "chunk-size line too long")
		}
		line = b.line
	}
	if err != nil {
		return err
	}
	if len(line) > maxChunkLine {
		return errorf(400, "chunk-size line too long")
	}
	size, ok := parseChunkSizeLine(line)
	if !ok {
		return errorf(400, "invalid chunk-size line")
	}
	if size == 0 {
		b.state = chTrailers
	} else {
		b.state, b.remain = chData, size
	}
	return nil
}

// parseChunkSizeLine parses chunk-size [ chunk-ext ] CRLF (RFC 9112
// §7.1, §7.1.1).
func parseChunkSizeLine(line []byte) (int64, bool) {
	if !endsCRLF(line) {
		return 0, false
	}
	line = line[:len(line)-2]
	var n int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if n > maxInt64>>4 {
			return 0, false
		}
		n = n<<4 | d
	}
	if i == 0 {
		return 0, false
	}
	return n, validChunkExt(line[i:])
}

// validChunkExt checks *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
// with ext-val = token / quoted-string (RFC 9112 §7.1.1). Whitespace that
// is not followed by ';' or '=' (e.g. "5 ") is rejected.
func validChunkExt(b []byte) bool {
	i := 0
	skipBWS := func() {
		for i < len(b) && isOWS(b[i]) {
			i++
		}
	}
	token := func() bool {
		s := i
		for i < len(b) && isTchar(b[i]) {
			i++
		}
		return i > s
	}
	for i < len(b) {
		skipBWS()
		if i == len(b) || b[i] != ';' {
			return false
		}
		i++
		skipBWS()
		if !token() {
			return false
		}
		j := i
		skipBWS()
		if i == len(b) || b[i] != '=' {
			i = j
			continue
		}
		i++
		skipBWS()
		if i < len(b) && b[i] == '"' {
			if i = quotedStringEnd(b, i); i < 0 {
				return false
			}
		} else if !token() {
			return false
		}
	}
	return true
}

// quotedStringEnd returns the index just past the quoted-string starting
// at b[i] (RFC 9110 §5.6.4), or -1.
func quotedStringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i == len(b) || (b[i] < 0x20 && b[i] != '\t') || b[i] == 0x7f {
				return -1
			}
		case (c < 0x20 && c != '\t') || c == 0x7f:
			return -1
		}
	}
	return -1
}

// readTrailers reads the trailer section (RFC 9112 §7.1.2) under Limits
// and the field-line rules of the header section.
func (b *BodyReader) readTrailers() error {
	lim := b.Limits.withDefaults()
	budget, count := lim.MaxHeaderBytes, 0
	tb := b.tbuf[:0]
	b.ends = b.ends[:0]
	for {
		start := len(tb)
		var tooLong bool
		var err error
		tb, tooLong, err = appendLine(b.br, tb, budget)
		b.tbuf = tb
		if tooLong {
			return errorf(400, "trailer section too large")
		}
		if err != nil {
			return err
		}
		line := tb[start:]
		budget -= len(line)
		if !endsCRLF(line) {
			return errorf(400, "trailer line not terminated by CRLF")
		}
		if len(line) == 2 {
			break
		}
		b.ends = append(b.ends, int32(len(tb)))
		if count++; count > lim.MaxHeaderCount {
			return errorf(400, "too many trailer fields")
		}
	}
	for i := range b.ends {
		name, value, ok := parseFieldLine(fieldLine(tb, b.ends, i, 0))
		if !ok {
			return errorf(400, "invalid trailer field")
		}
		b.trailers = append(b.trailers, Header{Name: name, Value: value})
	}
	b.state = chDone
	return nil
}
