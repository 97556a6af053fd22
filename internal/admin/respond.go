package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/sluicegw/sluice/internal/store"
)

// maxBody is APISIX's Admin API request body limit (1.5 MiB).
const maxBody = 3 << 19

// etcdPrefix is the key prefix APISIX reports items under (its default
// etcd.prefix), kept so clients that parse "key" see the same shape.
const etcdPrefix = "/apisix"

// errorBody is APISIX's error shape.
type errorBody struct {
	Msg string `json:"error_msg"`
}

// badBody is APISIX's answer to a body that is not JSON: the message and the
// body as received.
type badBody struct {
	Msg     string `json:"error_msg"`
	ReqBody string `json:"req_body"`
}

// notFoundBody is etcd's answer for a missing key, which APISIX passes on.
type notFoundBody struct {
	Message string `json:"message"`
}

// itemBody is one item as GET shows it.
type itemBody struct {
	Key           string          `json:"key"`
	Value         json.RawMessage `json:"value"`
	CreatedIndex  int64           `json:"createdIndex"`
	ModifiedIndex int64           `json:"modifiedIndex"`
}

// writtenBody is what PUT, POST and PATCH answer: APISIX returns the key and
// the stored value, without revisions.
type writtenBody struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// deletedBody is DELETE's answer; "deleted" is etcd's count as a string.
type deletedBody struct {
	Deleted string `json:"deleted"`
	Key     string `json:"key"`
}

// listBody is a list's answer.
type listBody struct {
	List  []itemBody `json:"list"`
	Total int        `json:"total"`
}

// response is a handler's result, written by serveAdmin.
type response struct {
	status int
	body   any
}

func fail(status int, msg string) response {
	return response{status, errorBody{Msg: msg}}
}

func badRequest(msg string) response { return fail(http.StatusBadRequest, msg) }

func keyNotFound() response {
	return response{http.StatusNotFound, notFoundBody{Message: "Key not found"}}
}

// storeError maps a store error to APISIX's status codes: etcd failures are
// 503 there, and a read-only store is a client error.
func storeError(err error) response {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return keyNotFound()
	case errors.Is(err, store.ErrReadOnly):
		return badRequest(readOnlyMsg)
	case errors.Is(err, store.ErrConflict):
		return fail(http.StatusConflict, "value changed before overwritten: "+err.Error())
	default:
		return fail(http.StatusServiceUnavailable, err.Error())
	}
}

const readOnlyMsg = "the Admin API is read-only: resources come from a file; edit the file instead"

func itemKey(kind store.Kind, id string) string {
	return etcdPrefix + "/" + string(kind) + "/" + id
}

// writeJSON writes v as the JSON body, or no body for a nil v.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if v == nil {
		w.WriteHeader(status)
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error_msg":"failed to encode the response"}`+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// readBody reads at most maxBody bytes. An empty body is nil; a body that is
// not JSON is answered with APISIX's 400 here.
func readBody(w http.ResponseWriter, r *http.Request) (json.RawMessage, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Msg: "invalid request body: " + err.Error()})
		return nil, false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, true
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		writeJSON(w, http.StatusBadRequest, badBody{Msg: "invalid request body: " + err.Error(), ReqBody: string(data)})
		return nil, false
	}
	return data, true
}
