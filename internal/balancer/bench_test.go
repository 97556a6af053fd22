package balancer

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPick measures one Pick plus its Done, the per-attempt cost on the
// proxy path, for each type with a small and a large upstream.
func BenchmarkPick(b *testing.B) {
	types := []string{TypeRoundRobin, "roundrobin-locked", TypeCHash, TypeLeastConn, TypeEWMA}
	for _, typ := range types {
		for _, size := range []int{3, 100} {
			weights := make([]int, size)
			for i := range weights {
				weights[i] = 1 + i%5
			}
			spec := Spec{UpstreamKey: "u", Type: typ, Key: "remote_addr", Nodes: mkNodes(weights...)}
			if typ == "roundrobin-locked" {
				spec.Type = TypeRoundRobin
			}
			p, err := New(spec, NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			if typ == "roundrobin-locked" {
				forceLocked(p)
			}
			var req VarSource = vars{"remote_addr": "192.0.2.44"}
			res := Result{Latency: time.Millisecond}
			b.Run(fmt.Sprintf("%s/%d", typ, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					n, _ := p.Pick(req, Tried{})
					p.Done(n, res)
				}
			})
			b.Run(fmt.Sprintf("%s/%d/parallel", typ, size), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						n, _ := p.Pick(req, Tried{})
						p.Done(n, res)
					}
				})
			})
			b.Run(fmt.Sprintf("%s/%d/retry", typ, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var tried Tried
					n, _ := p.Pick(req, tried)
					tried.Add(n)
					p.Done(n, Result{Failed: true})
					n, _ = p.Pick(req, tried)
					p.Done(n, res)
				}
			})
		}
	}
}

// BenchmarkPickHealth is BenchmarkPick with a health checker attached and one
// node down: the mask check must keep Pick lock-free and allocation-free.
func BenchmarkPickHealth(b *testing.B) {
	for _, typ := range []string{TypeRoundRobin, TypeCHash, TypeLeastConn, TypeEWMA} {
		for _, size := range []int{3, 100} {
			weights := make([]int, size)
			for i := range weights {
				weights[i] = 1 + i%5
			}
			h := &benchHealth{}
			down := []int{1}
			if size > 64 {
				down = append(down, 70)
			}
			h.down.Store(NewMask(down))
			p, err := New(Spec{UpstreamKey: "u", Type: typ, Key: "remote_addr", Nodes: mkNodes(weights...), Health: h}, NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			var req VarSource = vars{"remote_addr": "192.0.2.44"}
			res := Result{Latency: time.Millisecond, Status: 200}
			b.Run(fmt.Sprintf("%s/%d", typ, size), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					n, _ := p.Pick(req, Tried{})
					p.Done(n, res)
				}
			})
			b.Run(fmt.Sprintf("%s/%d/parallel", typ, size), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						n, _ := p.Pick(req, Tried{})
						p.Done(n, res)
					}
				})
			})
		}
	}
}

// benchHealth is a Health with a fixed mask whose Observe does what a
// checker's fast path does for a healthy outcome: one atomic load.
type benchHealth struct {
	down  atomic.Pointer[Mask]
	state atomic.Uint32
}

func (h *benchHealth) Down() *Mask { return h.down.Load() }

func (h *benchHealth) Observe(int, Result) { _ = h.state.Load() }
