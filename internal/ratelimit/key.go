package ratelimit

import (
	"errors"
	"fmt"

	"github.com/sluicegw/sluice/plugin"
	"github.com/sluicegw/sluice/plugin/ngxtmpl"
)

// Key types, as APISIX names them. KeyConstant is limit-count's only.
const (
	KeyVar            = "var"
	KeyVarCombination = "var_combination"
	KeyConstant       = "constant"
)

// CheckKey validates key_type and key as APISIX's limit-req and limit-conn
// schemas do: key is required, key_type is var or var_combination.
func CheckKey(keyType, key string) error {
	switch keyType {
	case KeyVar, KeyVarCombination:
	default:
		return fmt.Errorf("key_type: must be one of var, var_combination, got %q", keyType)
	}
	if key == "" {
		return errors.New("key: is required")
	}
	return nil
}

// Key resolves the value requests are limited by. It is compiled once per
// plugin instance and immutable.
type Key struct {
	combination bool
	constant    bool
	name        string
	tmpl        ngxtmpl.Template
}

// NewKey compiles a checked key_type and key.
func NewKey(keyType, key string) Key {
	k := Key{name: key, combination: keyType == KeyVarCombination, constant: keyType == KeyConstant}
	if k.combination {
		k.tmpl = ngxtmpl.Compile(key)
	}
	return k
}

// Of returns r's key: the key itself when constant. When a variable or a
// combination resolves to nothing (an unset variable, or a combination
// whose variables are all unset) the client address is used, as in APISIX.
// The result may be a view of request memory: whoever keeps it must copy
// it (Table does).
func (k *Key) Of(r plugin.Request) string {
	if k.constant {
		return k.name
	}
	if k.combination {
		cv := countingVars{src: r}
		var buf [128]byte
		b := k.tmpl.Append(buf[:0], &cv, nil)
		if cv.n > 0 {
			return string(b)
		}
	} else if v, ok := r.Var(k.name); ok {
		return v
	}
	v, _ := r.Var("remote_addr")
	return v
}

// countingVars counts the variables a template found set (APISIX's
// n_resolved: a combination of only unset variables is no key).
type countingVars struct {
	src ngxtmpl.VarSource
	n   int
}

func (cv *countingVars) Var(name string) (string, bool) {
	v, ok := cv.src.Var(name)
	if ok {
		cv.n++
	}
	return v, ok
}
