package all_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/plugin"
	_ "github.com/sluicegw/sluice/plugins/all"
)

var update = flag.Bool("update", false, "rewrite testdata/order.golden")

// TestPluginOrder keeps plugin order as data in one reviewable place: every
// built-in plugin with its priority, highest first. A reorder or a new plugin
// changes the golden file, so it shows in review (run with -update).
func TestPluginOrder(t *testing.T) {
	var b strings.Builder
	seen := map[int]string{}
	for _, d := range plugin.All() {
		fmt.Fprintf(&b, "%6d %s\n", d.Priority, d.Name)
		if other, dup := seen[d.Priority]; dup {
			t.Errorf("%s and %s share priority %d: their order would depend on their names", other, d.Name, d.Priority)
		}
		seen[d.Priority] = d.Name
	}
	const golden = "testdata/order.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("plugin order changed; review and run with -update:\ngot:\n%s\nwant:\n%s", b.String(), want)
	}
}
