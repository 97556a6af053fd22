package ngxtmpl

import "testing"

func TestEscapeURI(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"/a b#c%d?e\x01\x7f\xc3\xa9&=:+~\"'", "/a%20b%23c%25d%3Fe%01%7F%C3%A9&=:+~\"'"},
		{"/plain/path;x=1", "/plain/path;x=1"},
		{"", ""},
		{"\x00\x1f\xff", "%00%1F%FF"},
	}
	for _, tt := range tests {
		if got := EscapeURI(tt.in); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEscapeControls(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a=1&b=2", "a=1&b=2"},
		{"a=1\r\nX: y", "a=1%0D%0AX: y"},
		{"\x00\x1f\x7f", "%00%1F%7F"},
		{"sp ace#?%\xc3\xa9", "sp ace#?%\xc3\xa9"}, // only controls
		{"", ""},
	}
	for _, tt := range tests {
		if got := EscapeControls(tt.in); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEscapeUnchangedAllocs(t *testing.T) {
	s := "/already/clean?no=controls"
	if n := testing.AllocsPerRun(100, func() { _ = EscapeControls(s); _ = EscapeURI("/clean") }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
