package admin

import (
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"

	"github.com/sluicegw/sluice/internal/config"
	"github.com/sluicegw/sluice/internal/store"
)

// decodeResource strictly decodes and validates one resource alone
// (config.DecodeKind), with FieldErrors paths relative to the resource.
func decodeResource(kind store.Kind, id string, data []byte) error {
	_, err := config.DecodeKind(string(kind), id, data)
	return err
}

// check validates a value about to be stored: the resource alone, the ids it
// references, and then the whole prospective listing through opts.Validate,
// the code that compiles snapshots. Messages follow APISIX's wording.
func (a *API) check(res *resource, id string, v object, data []byte, l store.Listing) (response, bool) {
	if err := a.decode(res.kind, id, data); err != nil {
		return badRequest("invalid configuration: " + err.Error()), false
	}
	if msg := missingRef(res, v, l); msg != "" {
		return badRequest(msg), false
	}
	if res.kind == store.GlobalRules {
		if msg := globalRuleConflict(id, v, l); msg != "" {
			return badRequest(msg), false
		}
	}
	if a.validate != nil {
		next := withItem(l, res.kind, id, data)
		if err := a.validate(next); err != nil {
			return badRequest("invalid configuration: " + nameByID(err.Error(), next)), false
		}
	}
	return response{}, true
}

// refFields are the references APISIX checks at write time, per kind.
var refFields = map[store.Kind][]struct {
	field string
	kind  store.Kind
	word  string
}{
	store.Routes: {
		{"upstream_id", store.Upstreams, "upstream"},
		{"service_id", store.Services, "service"},
		{"plugin_config_id", store.PluginConfigs, "plugin config"},
	},
	store.Services:  {{"upstream_id", store.Upstreams, "upstream"}},
	store.Consumers: {{"group_id", store.ConsumerGroups, "consumer group"}},
}

// missingRef reports a reference to a resource that does not exist, in
// APISIX's words ("failed to fetch upstream info by upstream id [1], response
// code: 404").
func missingRef(res *resource, v object, l store.Listing) string {
	for _, f := range refFields[res.kind] {
		ref, ok := idString(v[f.field])
		if !ok || ref == "" {
			continue
		}
		if findItem(l, f.kind, ref) == nil {
			return "failed to fetch " + f.word + " info by " + f.word + " id [" + ref + "], response code: 404"
		}
	}
	return ""
}

// globalRuleConflict refuses a plugin already enabled by another global rule,
// as APISIX does.
func globalRuleConflict(id string, v object, l store.Listing) string {
	plugins, _ := v["plugins"].(object)
	if len(plugins) == 0 {
		return ""
	}
	for _, it := range sortedItems(l, store.GlobalRules) {
		if it.ID == id {
			continue
		}
		other, err := decodeObject(it.Value)
		if err != nil {
			continue
		}
		op, _ := other["plugins"].(object)
		for _, name := range slices.Sorted(maps.Keys(plugins)) {
			if _, dup := op[name]; dup {
				return "plugin '" + name + "' already exists in global rule with id '" + it.ID + "'"
			}
		}
	}
	return ""
}

// indexPath matches the index-based paths of config.Resources.Validate.
var indexPath = regexp.MustCompile(`\b(routes|services|upstreams)\[(\d+)\]`)

// nameByID rewrites "routes[3]" in a listing error to "routes[id=7]": the
// index is a position in runtime.ResourcesFromListing's order (by id within a
// kind, as etcd lists keys), meaningless to an API user.
func nameByID(msg string, l store.Listing) string {
	return indexPath.ReplaceAllStringFunc(msg, func(m string) string {
		sub := indexPath.FindStringSubmatch(m)
		i, _ := strconv.Atoi(sub[2])
		var ids []string
		for _, it := range l.Items {
			if string(it.Kind) == sub[1] {
				ids = append(ids, it.ID)
			}
		}
		slices.Sort(ids)
		if i >= len(ids) {
			return m
		}
		return sub[1] + "[id=" + ids[i] + "]"
	})
}

// schemaValidate answers POST /apisix/admin/schema/validate/<resource>: 200
// with no body when the body is a valid resource, 400 with error_msg
// otherwise. Like APISIX it checks the resource alone, not its references.
func (a *API) schemaValidate(w http.ResponseWriter, r *http.Request, name string) {
	res := resourceByName(name)
	if res == nil {
		writeJSON(w, http.StatusNotFound, errorBody{Msg: "Unsupported resource type: " + name})
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if body == nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Msg: "missing configurations"})
		return
	}
	conf, err := decodeObject(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Msg: "invalid configuration: " + err.Error()})
		return
	}
	normalizeIDs(conf)
	id, _ := idString(conf["id"])
	if err := a.decode(res.kind, id, encodeJSON(conf)); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Msg: "invalid configuration: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, nil)
}

// sortedItems returns the items of one kind ordered by id.
func sortedItems(l store.Listing, kind store.Kind) []store.Item {
	var out []store.Item
	for _, it := range l.Items {
		if it.Kind == kind {
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(x, y store.Item) int { return compareIDs(x.ID, y.ID) })
	return out
}

// compareIDs orders ids numerically when both are decimal, else as strings.
func compareIDs(x, y string) int {
	nx, ex := strconv.ParseUint(x, 10, 64)
	ny, ey := strconv.ParseUint(y, 10, 64)
	if ex == nil && ey == nil {
		switch {
		case nx < ny:
			return -1
		case nx > ny:
			return 1
		}
		return 0
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
