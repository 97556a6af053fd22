package ratelimit

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/sluicegw/sluice/plugin"
)

// RejectExit is the answer to a request over a limit: {"error_msg": msg}
// when rejected_msg is set, else the bare status with nginx's error page,
// as APISIX answers. Built once per instance.
func RejectExit(code int, msg *string) *plugin.Exit {
	if msg != nil {
		return plugin.JSONExit(code, `{"error_msg":`+strconv.Quote(*msg)+`}`)
	}
	return StatusExit(code)
}

// StatusExit is a bare status as nginx renders it (APISIX's `return 500`
// from a plugin): an HTML error page.
func StatusExit(code int) *plugin.Exit {
	title := strconv.Itoa(code) + " " + statusText(code)
	page := "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
		"</h1></center>\r\n<hr><center>sluice</center>\r\n</body>\r\n</html>\r\n"
	return &plugin.Exit{Status: code, Headers: []plugin.Header{{Name: "Content-Type", Value: "text/html"}}, Body: []byte(page)}
}

// statusText is nginx's reason phrase where it differs from Go's.
func statusText(code int) string {
	if code == http.StatusServiceUnavailable {
		return "Service Temporarily Unavailable"
	}
	return http.StatusText(code)
}

// CheckRejection validates rejected_code and rejected_msg as APISIX's
// schemas do.
func CheckRejection(code int, msg *string) error {
	if code < 200 || code > 599 {
		return fmt.Errorf("rejected_code: must be between 200 and 599, got %d", code)
	}
	if msg != nil && *msg == "" {
		return errors.New("rejected_msg: must not be empty")
	}
	return nil
}
