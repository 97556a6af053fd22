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
	f.Add([]byte(everyKindYAML), "apisix.yaml")
	f.Add([]byte(`{"plugin_metadata":[{"id":1,"a":{"b":[1.5,null]}}],"consumers":[{"username":"a","group_id":2}]}`), "apisix.json")
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

func FuzzDecodeKind(f *testing.F) {
	for i, body := range []string{
		`{"uri":"/a","upstream_id":1}`,
		`{"id":2,"uri":"/a","plugins":{}}`,
		`{"nodes":{"h:80":1},"tls":{"client_cert_id":"c"}}`,
		`{"username":"jack","group_id":1,"plugins":{"key-auth":{"key":"k"}}}`,
		`{"plugins":{},"name":"n","labels":{"a":"b"}}`,
		`{"plugins":{"a":{}}}`,
		`{"plugins":{},"create_time":1,"update_time":2}`,
		`{"snis":["*.a.com"],"cert":"$secret://c","key":"$env://k","client":{"ca":"x","depth":0,"skip_mtls_uri_regex":["^/"]},"ssl_protocols":["TLSv1.3"]}`,
		`{"id":"http-logger","log_format":{"host":"$host"}}`,
	} {
		f.Add(uint8(i), "1", []byte(body))
	}
	f.Add(uint8(7), "s", []byte(`{"type":"client","cert":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----","key":"k"}`))
	f.Add(uint8(3), "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, k uint8, id string, data []byte) {
		kinds := KindNames()
		kind := kinds[int(k)%len(kinds)]
		v, err := DecodeKind(kind, id, data)
		if err != nil {
			if v != nil {
				t.Fatalf("DecodeKind returned %T with error %v", v, err)
			}
			return
		}
		// A valid resource encodes to a body that is valid again, under the
		// same URL id, and encodes to the same bytes.
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		v2, err := DecodeKind(kind, id, b)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		b2, _ := json.Marshal(v2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed:\n%s\n%s", b, b2)
		}
	})
}
