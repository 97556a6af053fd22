package requestid

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

const hexLower = "0123456789abcdef"

// formatUUID writes b as 8-4-4-4-12 lower-case hex.
func formatUUID(b *[16]byte) string {
	var s [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexLower[c>>4], hexLower[c&15]
		j += 2
	}
	return string(s[:])
}

// uuidV4 returns a random (version 4) UUID, RFC 9562 section 5.4.
func uuidV4() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(&b)
}

// uuidV7 returns a time-ordered (version 7) UUID, RFC 9562 section 5.7:
// 48 bits of Unix milliseconds, then random bits. Unlike APISIX's, IDs from
// the same millisecond are not ordered among themselves (no shared counter).
func uuidV7() string {
	var b [16]byte
	_, _ = rand.Read(b[6:])
	ms := uint64(time.Now().UnixMilli())
	b[0], b[1], b[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	b[3], b[4], b[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(&b)
}

// nanoAlphabet has 64 characters, so 6 random bits pick one without bias.
const nanoAlphabet = "-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// nanoID returns a 21-character nanoid, as APISIX's.
func nanoID() string {
	var b [21]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = nanoAlphabet[b[i]&63]
	}
	return string(b[:])
}

// rangeID draws Length characters from a character set, uniformly (by
// rejection sampling over crypto/rand; APISIX uses math.random).
type rangeID struct {
	set    []string // one entry per character (characters may be multi-byte)
	length int
	// limit rejects uint16 draws >= limit to avoid modulo bias; 0 (when
	// the set size divides 65536) rejects none.
	limit uint16
}

func newRangeID(c RangeID) *rangeID {
	r := &rangeID{length: c.Length}
	for _, ch := range c.CharSet {
		r.set = append(r.set, string(ch))
	}
	n := uint32(len(r.set))
	r.limit = uint16(65536 - 65536%n) // wraps to 0 when n divides 65536
	return r
}

func (r *rangeID) next() string {
	n := uint16(len(r.set))
	out := make([]byte, 0, r.length)
	var buf [128]byte
	for count := 0; count < r.length; {
		_, _ = rand.Read(buf[:])
		for i := 0; i+1 < len(buf) && count < r.length; i += 2 {
			v := binary.LittleEndian.Uint16(buf[i:])
			if r.limit != 0 && v >= r.limit {
				continue
			}
			out = append(out, r.set[v%n]...)
			count++
		}
	}
	return string(out)
}

// ksuidEpoch is KSUID's epoch (2014-05-13T16:53:20Z), in Unix seconds.
const ksuidEpoch = 1400000000

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ksuid returns a KSUID: 4 bytes of seconds since ksuidEpoch and 16 random
// bytes, as 27 base62 characters (zero-padded), so IDs sort by time.
func ksuid() string {
	var b [20]byte
	binary.BigEndian.PutUint32(b[:4], uint32(time.Now().Unix()-ksuidEpoch))
	_, _ = rand.Read(b[4:])
	var words [5]uint32
	for i := range words {
		words[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	var out [27]byte
	for i := len(out) - 1; i >= 0; i-- {
		var rem uint64
		for w := range words { // long division of the 160-bit number by 62
			cur := rem<<32 | uint64(words[w])
			words[w] = uint32(cur / 62)
			rem = cur % 62
		}
		out[i] = base62[rem]
	}
	return string(out[:])
}
