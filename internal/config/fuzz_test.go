package config

import (
	"encoding/json"
	"testing"
)

func FuzzParseResourcesFile(f *testing.F) {
	f.Add([]byte(goodYAML), "apisix.yaml")
	f.Add([]byte(`{"routes":[{"id":1,"uri":"/","upstream":{"nodes":{"[::1]:80":1}}}]}`), "apisix.json")
	f.Add([]byte("a: &a [1]\nb: {<<: *a}\n#END"), "x.yaml")
	f.Add([]byte("upstreams:\n  - {id: u, nodes: {\"h\": 1}, keepalive_pool: {}}\n#END"), "x.yml")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		res, err := ParseResourcesFile(data, name)
		if err != nil {
			return
		}
		_ = res.Validate()
		// What decoded must encode, and encode again to the same bytes.
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		res2, err := ParseResourcesFile(b, "again.json")
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		b2, _ := json.Marshal(res2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed:\n%s\n%s", b, b2)
		}
	})
}

func FuzzDecodeRoute(f *testing.F) {
	f.Add([]byte(`{"uri":"/a","upstream_id":1}`), false)
	f.Add([]byte(`{"uris":["/a"],"hosts":["*.a"],"upstream":{"type":"chash","key":"arg_x","nodes":{"h:1":1}}}`), false)
	f.Add([]byte("uri: /a\nremote_addrs: [10.0.0.0/8]\nplugins: {}\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, yaml bool) {
		format := FormatJSON
		if yaml {
			format = FormatYAML
		}
		r, err := DecodeRoute(data, format)
		if err != nil {
			return
		}
		verr := r.Validate()
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		r2, err := DecodeRoute(b, FormatJSON)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		// Validation must not depend on which form the input took.
		if (verr == nil) != (r2.Validate() == nil) {
			t.Fatalf("validation differs after round trip of %s: %v vs %v", b, verr, r2.Validate())
		}
	})
}
