package admin

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// listIDs returns the ids of a list answer, in order, and its total.
func listIDs(t *testing.T, body string) ([]string, int) {
	t.Helper()
	list, _ := field(t, body, "list").([]any)
	ids := make([]string, 0, len(list))
	for _, it := range list {
		v := it.(map[string]any)["value"].(map[string]any)
		ids = append(ids, v["id"].(string))
	}
	return ids, int(field(t, body, "total").(float64))
}

func TestListPaginationAndFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/upstreams/u1", upstreamBody, http.StatusCreated, "")
	// Created in the order r24, r23, ... r00, so creation order differs from key order.
	for i := 24; i >= 0; i-- {
		body := fmt.Sprintf(`{"uri":"/path/%02d","name":"route-%02d","upstream_id":"u1"}`, i, i)
		if i%5 == 0 {
			body = fmt.Sprintf(`{"uris":["/other","/five/%02d"],"name":"five-%02d","labels":{"team":"a"},"upstream":%s}`, i, i, upstreamBody)
		}
		e.expect("PUT", fmt.Sprintf("/apisix/admin/routes/r%02d", i), body, http.StatusCreated, "")
	}
	tests := []struct {
		desc  string
		query string
		ids   []string // nil: only check total
		total int
	}{
		{desc: "all, in key order", query: "", total: 25,
			ids: []string{"r00", "r01", "r02", "r03", "r04", "r05", "r06", "r07", "r08", "r09", "r10", "r11", "r12",
				"r13", "r14", "r15", "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24"}},
		{desc: "first page in creation order", query: "?page=1&page_size=10", total: 25,
			ids: []string{"r24", "r23", "r22", "r21", "r20", "r19", "r18", "r17", "r16", "r15"}},
		{desc: "last page is short", query: "?page=3&page_size=10", total: 25,
			ids: []string{"r04", "r03", "r02", "r01", "r00"}},
		{desc: "page past the end is empty", query: "?page=9&page_size=10", total: 25, ids: []string{}},
		{desc: "page below 1 is page 1", query: "?page=0&page_size=10", total: 25,
			ids: []string{"r24", "r23", "r22", "r21", "r20", "r19", "r18", "r17", "r16", "r15"}},
		{desc: "page alone does not paginate", query: "?page=2", total: 25},
		{desc: "name is a regular expression search", query: "?name=^five-1", total: 2, ids: []string{"r10", "r15"}},
		{desc: "name substring", query: "?name=ute-0", total: 8},
		{desc: "label matches a label key", query: "?label=team", total: 5, ids: []string{"r00", "r05", "r10", "r15", "r20"}},
		{desc: "label value is not a key", query: "?label=a", total: 0, ids: []string{}},
		{desc: "uri searches uri", query: "?uri=/path/1", total: 8},
		{desc: "uri searches uris", query: "?uri=^/five/2", total: 1, ids: []string{"r20"}},
		{desc: "filters combine", query: "?label=team&uri=/five/0", total: 2, ids: []string{"r00", "r05"}},
		{desc: "filter argument matches fields exactly", query: "?filter=upstream_id%3Du1", total: 20},
		{desc: "filter argument ignores unknown fields", query: "?filter=colour%3Dred", total: 25},
		{desc: "filtered then paginated", query: "?name=route&page=2&page_size=10", total: 20,
			ids: []string{"r12", "r11", "r09", "r08", "r07", "r06", "r04", "r03", "r02", "r01"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := e.expect("GET", "/apisix/admin/routes"+tc.query, "", http.StatusOK, "")
			ids, total := listIDs(t, r.body)
			if total != tc.total {
				t.Errorf("total = %d, want %d (ids %v)", total, tc.total, ids)
			}
			if tc.ids != nil && !slices.Equal(ids, tc.ids) {
				t.Errorf("ids = %v\nwant  %v", ids, tc.ids)
			}
		})
	}
	for _, q := range []string{"?page=1&page_size=9", "?page=1&page_size=501"} {
		e.expect("GET", "/apisix/admin/routes"+q, "", http.StatusBadRequest,
			`{"error_msg":"page_size must be between 10 and 500"}`)
	}
}

// TestListItemShape compares a whole list answer.
func TestListItemShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.expect("PUT", "/apisix/admin/upstreams/u1", upstreamBody, http.StatusCreated, "")
	it := e.item("upstreams", "u1")
	e.expect("GET", "/apisix/admin/upstreams", "", http.StatusOK, fmt.Sprintf(
		`{"total":1,"list":[{"key":"/apisix/upstreams/u1","createdIndex":%d,"modifiedIndex":%d,`+
			`"value":{"id":"u1","type":"roundrobin","nodes":{"127.0.0.1:8080":1},"create_time":%d,"update_time":%d}}]}`,
		it.CreateRev, it.ModRev, t0, t0))
}
