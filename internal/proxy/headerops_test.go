package proxy

import (
	"slices"
	"testing"
)

func TestHeaderOps(t *testing.T) {
	var o headerOps
	o.add("X-A", "1")
	if got := o.value("x-a", "orig", true); got != "orig" {
		t.Errorf("an add keeps the original first value: %q", got)
	}
	if got := o.values("X-A", []string{"orig"}); !slices.Equal(got, []string{"orig", "1"}) {
		t.Errorf("values after add: %v", got)
	}
	o.set("x-a", "2")
	if got := o.value("X-A", "orig", true); got != "2" {
		t.Errorf("set replaces: %q", got)
	}
	o.add("X-A", "3")
	if got := o.values("X-A", []string{"orig"}); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("values after set+add: %v", got)
	}
	o.remove("X-A")
	if got := o.value("X-A", "orig", true); got != "" || o.values("X-A", []string{"orig"}) != nil || !o.deletes("x-a") {
		t.Errorf("remove drops everything: %q", got)
	}
	var added []string
	o.add("X-B", "b")
	o.added(func(n, v string) { added = append(added, n+"="+v) })
	if !slices.Equal(added, []string{"X-B=b"}) {
		t.Errorf("added after a later remove must skip X-A: %v", added)
	}
	if got := o.value("X-C", "", false); got != "" {
		t.Errorf("untouched absent header: %q", got)
	}
}
