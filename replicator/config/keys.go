package config

import (
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mongopg/replicator/transform"
)

var columnsType = reflect.TypeOf(transform.Columns{})

// unknownKeys reports every mapping key that no field of t accepts, walking
// n and t together.
func (c *Config) unknownKeys(n *yaml.Node, t reflect.Type, path string) Problems {
	n = resolveAlias(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil {
		return nil
	}
	var ps Problems
	switch {
	case t == columnsType:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		ct := reflect.TypeOf(transform.ColumnConfig{})
		for i := 0; i+1 < len(n.Content); i += 2 {
			ps = append(ps, c.unknownKeys(n.Content[i+1], ct, join(path, n.Content[i].Value))...)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == "<<" {
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				ps = append(ps, Problem{
					File: c.File, Line: k.Line, Column: k.Column, Key: join(path, k.Value),
					Msg: "unknown key (known: " + knownList(fields) + ")",
				})
				continue
			}
			ps = append(ps, c.unknownKeys(n.Content[i+1], ft, join(path, k.Value))...)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, item := range n.Content {
			ps = append(ps, c.unknownKeys(item, t.Elem(), path+"["+strconv.Itoa(i)+"]")...)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			ps = append(ps, c.unknownKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))...)
		}
	}
	return ps
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys to field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func knownList(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
