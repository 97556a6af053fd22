package h1

// framing accumulates the header fields that decide message framing and
// connection handling while the field lines are parsed.
type framing struct {
	cl       int64
	clSeen   bool
	clBad    bool
	te       bool // any Transfer-Encoding field line
	teBad    bool // syntax error, empty member, or parameters on chunked
	chunkedN int  // number of "chunked" codings
	lastIsCh bool // the final coding is chunked
	teOther  bool // a coding other than chunked

	connClose, connKeepAlive, connUpgrade bool

	hostN      int
	host       []byte
	upgradeHdr bool
	expect100  bool
}

// add inspects one field line. Names are matched case-insensitively
// (RFC 9110 §5.1); the length switch keeps the common case to one compare.
func (f *framing) add(name, value []byte) {
	switch len(name) {
	case 4:
		if EqualFold(name, "host") {
			f.hostN++
			f.host = value
		}
	case 6:
		if EqualFold(name, "expect") && EqualFold(value, "100-continue") {
			f.expect100 = true
		}
	case 7:
		if EqualFold(name, "upgrade") && len(value) > 0 {
			f.upgradeHdr = true
		}
	case 10:
		if EqualFold(name, "connection") {
			f.addConnection(value)
		}
	case 14:
		if EqualFold(name, "content-length") {
			f.addContentLength(value)
		}
	case 17:
		if EqualFold(name, "transfer-encoding") {
			f.addTransferEncoding(value)
		}
	}
}

// addContentLength accepts 1*DIGIT, or a list / repeated field whose
// members are all identical (RFC 9110 §8.6); anything else is invalid
// framing (RFC 9112 §6.3 item 5).
func (f *framing) addContentLength(v []byte) {
	for more := true; more; {
		var elem []byte
		elem, v, more = nextListElem(v)
		n, ok := parseDecimal(elem)
		if !ok || (f.clSeen && n != f.cl) {
			f.clBad = true
			return
		}
		f.cl, f.clSeen = n, true
	}
}

// addTransferEncoding records the transfer codings of one field line; the
// lines of a message form one list (RFC 9110 §5.3). Coding names are
// case-insensitive (RFC 9112 §7).
func (f *framing) addTransferEncoding(v []byte) {
	f.te = true
	for more := true; more; {
		var elem []byte
		elem, v, more = nextListElem(v)
		name, params := elem, []byte(nil)
		for i, c := range elem {
			if c == ';' {
				name, params = trimOWS(elem[:i]), elem[i:]
				break
			}
		}
		if !isToken(name) {
			// Covers empty members ("chunked,", ", chunked") too.
			f.teBad = true
			return
		}
		if EqualFold(name, "chunked") {
			// chunked has no parameters and must not be applied twice
			// (RFC 9112 §7).
			if params != nil {
				f.teBad = true
			}
			f.chunkedN++
			f.lastIsCh = true
		} else {
			f.teOther = true
			f.lastIsCh = false
		}
	}
}

// addConnection records the connection options we act on (RFC 9110 §7.6.1).
// Members that are not tokens are ignored: they cannot name a field.
func (f *framing) addConnection(v []byte) {
	for more := true; more; {
		var elem []byte
		elem, v, more = nextListElem(v)
		switch {
		case EqualFold(elem, "close"):
			f.connClose = true
		case EqualFold(elem, "keep-alive"):
			f.connKeepAlive = true
		case EqualFold(elem, "upgrade"):
			f.connUpgrade = true
		}
	}
}

// keepAlive applies RFC 9112 §9.3: HTTP/1.1 is persistent unless "close";
// HTTP/1.0 only with "keep-alive" (RFC 9112 Appendix C.2.2).
func (f *framing) keepAlive(minor int) bool {
	if f.connClose {
		return false
	}
	return minor == 1 || f.connKeepAlive
}
