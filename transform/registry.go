package transform

import (
	"fmt"
	"sort"
	"sync"
)

// Registry dispatches events to the Transformer of their namespace. It is a
// plain value: build it with NewRegistry and Register each collection
// explicitly (no init-time self-registration). Safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	ts map[string]Transformer
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{ts: map[string]Transformer{}} }

// Register sets the transformer for ns ("db.coll"). Registering a namespace
// twice is an error: replace a declarative mapping by registering the
// custom transformer instead of it, or wrap it with PostProcess.
func (r *Registry) Register(ns string, t Transformer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ts[ns]; ok {
		return fmt.Errorf("register %s: namespace already has a transformer", ns)
	}
	if t == nil {
		return fmt.Errorf("register %s: nil transformer", ns)
	}
	r.ts[ns] = t
	return nil
}

// Namespaces lists the registered namespaces, sorted.
func (r *Registry) Namespaces() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.ts))
	for ns := range r.ts {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the transformer of ns.
func (r *Registry) Lookup(ns string) (Transformer, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.ts[ns]
	return t, ok
}

// Transform dispatches ev by namespace. dropDatabase and invalidate events,
// which may name no collection, return their KindControl result directly.
// An unknown namespace is an *Error wrapping ErrUnknownNamespace.
func (r *Registry) Transform(ev *Event) (Result, error) {
	if ev.OperationType == OpDropDatabase || ev.OperationType == OpInvalidate {
		res, _ := controlResult(ev)
		return res, nil
	}
	ns := ev.Namespace()
	t, ok := r.Lookup(ns)
	if !ok {
		return Result{}, &Error{Collection: ns, Err: ErrUnknownNamespace}
	}
	return t.Transform(ev)
}

// TransformerFunc adapts a function to Transformer.
type TransformerFunc func(ev *Event) (Result, error)

// Transform calls f.
func (f TransformerFunc) Transform(ev *Event) (Result, error) { return f(ev) }

// PostProcess returns a Transformer that runs base and then fn on its
// successful result, for collections whose declarative mapping needs a
// code-defined touch (derived columns, extra rows).
func PostProcess(base Transformer, fn func(ev *Event, r Result) (Result, error)) Transformer {
	return TransformerFunc(func(ev *Event) (Result, error) {
		r, err := base.Transform(ev)
		if err != nil {
			return r, err
		}
		return fn(ev, r)
	})
}
