package admin

import (
	"cmp"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"

	"github.com/sluicegw/sluice/internal/store"
)

// Page size bounds of APISIX's v3 list pagination.
const (
	minPageSize = 10
	maxPageSize = 500
)

// list answers GET /apisix/admin/<resource> as APISIX v3 does: every item in
// key order, narrowed by the name, label, uri and filter arguments, with
// "total" counting the matches; page and page_size (both needed) then cut one
// page out of the matches ordered by creation.
func (a *API) list(r *http.Request, req *request) response {
	f, resp, ok := parseFilters(req)
	if !ok {
		return resp
	}
	page, size, paged, resp, ok := parsePage(req.args)
	if !ok {
		return resp
	}
	l, err := a.st.List(r.Context())
	if err != nil {
		return storeError(err)
	}
	items := make([]store.Item, 0)
	for _, it := range l.Items {
		if it.Kind == req.res.kind && f.match(it) {
			items = append(items, it)
		}
	}
	// etcd returns a range in key order.
	slices.SortFunc(items, func(x, y store.Item) int { return cmp.Compare(x.ID, y.ID) })
	total := len(items)
	if paged {
		slices.SortStableFunc(items, func(x, y store.Item) int { return cmp.Compare(x.CreateRev, y.CreateRev) })
		from := min((page-1)*size, len(items))
		items = items[from:min(from+size, len(items))]
	}
	out := listBody{List: make([]itemBody, 0, len(items)), Total: total}
	for _, it := range items {
		out.List = append(out.List, itemBody{
			Key:           itemKey(it.Kind, it.ID),
			Value:         stripSecrets(it.Kind, it.Value),
			CreatedIndex:  it.CreateRev,
			ModifiedIndex: it.ModRev,
		})
	}
	return response{http.StatusOK, out}
}

// parsePage reads page and page_size. Like APISIX, pagination applies only
// when both are numbers; page_size must be 10..500 and a page below 1 is 1.
func parsePage(args url.Values) (page, size int, paged bool, resp response, ok bool) {
	p, errP := strconv.Atoi(args.Get("page"))
	s, errS := strconv.Atoi(args.Get("page_size"))
	if errP != nil || errS != nil {
		return 0, 0, false, response{}, true
	}
	if s < minPageSize || s > maxPageSize {
		return 0, 0, false, badRequest("page_size must be between 10 and 500"), false
	}
	return max(p, 1), s, true, response{}, true
}

// filters are a list request's narrowing arguments.
type filters struct {
	name, uri *regexp.Regexp
	label     string
	hasLabel  bool
	fields    map[string]string // the "filter" argument, exact matches
}

// parseFilters reads APISIX's list filters: name and uri are regular
// expressions searched in the name and in uri or any of uris; label matches
// items that have that label key; filter is a query string of exact matches on
// the resource's filter fields (routes: service_id, upstream_id), other keys
// ignored.
func parseFilters(req *request) (filters, response, bool) {
	var f filters
	var err error
	if v, ok := req.args["name"]; ok {
		if f.name, err = regexp.Compile(v[0]); err != nil {
			return f, badRequest("invalid name filter: " + err.Error()), false
		}
	}
	if v, ok := req.args["uri"]; ok {
		if f.uri, err = regexp.Compile(v[0]); err != nil {
			return f, badRequest("invalid uri filter: " + err.Error()), false
		}
	}
	if v, ok := req.args["label"]; ok {
		f.label, f.hasLabel = v[0], true
	}
	if v := req.args.Get("filter"); v != "" {
		q, err := url.ParseQuery(v)
		if err != nil {
			return f, badRequest("invalid filter: " + err.Error()), false
		}
		f.fields = map[string]string{}
		for k, vs := range q {
			if slices.Contains(req.res.filterFields, k) {
				f.fields[k] = vs[len(vs)-1] // APISIX uses the last value
			}
		}
	}
	return f, response{}, true
}

func (f *filters) match(it store.Item) bool {
	if f.name == nil && f.uri == nil && !f.hasLabel && len(f.fields) == 0 {
		return true
	}
	v, err := decodeObject(it.Value)
	if err != nil {
		return false
	}
	if f.name != nil {
		name, _ := v["name"].(string)
		if !f.name.MatchString(name) || name == "" {
			return false
		}
	}
	if f.hasLabel {
		labels, _ := v["labels"].(object)
		if _, ok := labels[f.label]; !ok {
			return false
		}
	}
	if f.uri != nil && !uriMatches(f.uri, v) {
		return false
	}
	for k, want := range f.fields {
		if got, ok := idString(v[k]); !ok || got != want {
			return false
		}
	}
	return true
}

func uriMatches(re *regexp.Regexp, v object) bool {
	if u, ok := v["uri"].(string); ok && re.MatchString(u) {
		return true
	}
	uris, _ := v["uris"].([]any)
	for _, u := range uris {
		if s, ok := u.(string); ok && re.MatchString(s) {
			return true
		}
	}
	return false
}
