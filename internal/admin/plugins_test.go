package admin_test

// The Admin API validates plugin configs with the real plugins.
import _ "github.com/sluicegw/sluice/plugins/all"
