package h1

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// TestZeroAllocs locks in the steady-state allocation budget: none.
func TestZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	chunked := chunkedInput(300, 5)
	req := browserRequest + "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
	src := strings.NewReader(req)
	br := bufio.NewReader(src)
	var r Request
	var resp Response
	var body BodyReader
	buf := make([]byte, 512)
	run := func() {
		src.Reset(req)
		br.Reset(src)
		for i := 0; i < 2; i++ {
			if err := ReadRequest(br, &r, Limits{}); err != nil {
				t.Fatal(err)
			}
			body.Reset(br, r.BodyMode(), r.ContentLength)
			for {
				_, err := body.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		src.Reset(smallResponse)
		br.Reset(src)
		if err := ReadResponse(br, &resp, Limits{}, r.Method); err != nil {
			t.Fatal(err)
		}
	}
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocs per run, want 0", n)
	}
}

// TestValidFieldValue checks the word-at-a-time scan against the plain
// byte loop for every byte value at every position of a word.
func TestValidFieldValue(t *testing.T) {
	t.Parallel()
	b := []byte("abcdefghijklmnopq")
	for pos := range b {
		for c := 0; c < 256; c++ {
			v := append([]byte(nil), b...)
			v[pos] = byte(c)
			want := (c >= 0x20 || c == '\t') && c != 0x7f
			if got := validFieldValue(v); got != want {
				t.Fatalf("pos %d byte %#x: got %v", pos, c, got)
			}
			if got := validFieldValue(v[pos:]); got != want {
				t.Fatalf("suffix pos %d byte %#x: got %v", pos, c, got)
			}
		}
	}
}
