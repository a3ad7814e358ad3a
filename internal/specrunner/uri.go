package specrunner

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func hasKeyFold(doc bson.Raw, key string) bool {
	elems, _ := doc.Elements()
	for _, e := range elems {
		if strings.EqualFold(e.Key(), key) {
			return true
		}
	}
	return false
}

// hostList returns the seed list of a connection string.
func hostList(uri string) string {
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest
}

// singleHost keeps only the first host of the seed list.
func singleHost(uri string) string {
	hosts := hostList(uri)
	first, _, found := strings.Cut(hosts, ",")
	if !found {
		return uri
	}
	return strings.Replace(uri, hosts, first, 1)
}

// withURIOptions adds the options to the connection string's query,
// replacing any option of the same (case-insensitive) name.
func withURIOptions(uri string, opts bson.Raw) (string, error) {
	if len(opts) == 0 {
		return uri, nil
	}
	base, query, _ := strings.Cut(uri, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", err
	}
	elems, err := opts.Elements()
	if err != nil {
		return "", err
	}
	for _, e := range elems {
		key := e.Key()
		for k := range q {
			if strings.EqualFold(k, key) {
				delete(q, k)
			}
		}
		vals, err := uriValues(e.Value())
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		q[key] = vals
		if strings.EqualFold(key, "directConnection") && len(vals) == 1 && vals[0] == "true" {
			for k := range q {
				if strings.EqualFold(k, "replicaSet") {
					delete(q, k)
				}
			}
		}
	}
	if !strings.Contains(base[strings.Index(base, "://")+3:], "/") {
		base += "/"
	}
	return base + "?" + q.Encode(), nil
}

func uriValues(v bson.RawValue) ([]string, error) {
	switch v.Type {
	case bson.TypeString:
		return []string{v.StringValue()}, nil
	case bson.TypeBoolean:
		return []string{strconv.FormatBool(v.Boolean())}, nil
	case bson.TypeInt32, bson.TypeInt64:
		return []string{strconv.FormatInt(v.AsInt64(), 10)}, nil
	case bson.TypeDouble:
		return []string{strconv.FormatFloat(v.Double(), 'f', -1, 64)}, nil
	case bson.TypeEmbeddedDocument:
		if _, _, isOp := operator(v.Document()); isOp {
			return nil, fmt.Errorf("placeholder values are not supported by this runner")
		}
		elems, _ := v.Document().Elements()
		var parts []string
		for _, e := range elems {
			s, err := uriValues(e.Value())
			if err != nil || len(s) != 1 {
				return nil, fmt.Errorf("unsupported nested value")
			}
			parts = append(parts, e.Key()+":"+s[0])
		}
		return []string{strings.Join(parts, ",")}, nil
	case bson.TypeArray:
		vals, _ := v.Array().Values()
		var out []string
		for _, x := range vals {
			s, err := uriValues(x)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value type %s", v.Type)
}
