package mongoemu

import "sort"

type sortKey struct {
	parts   []string
	desc    bool
	natural bool
}

func parseSort(spec Val) ([]sortKey, error) {
	if !spec.exists() || spec.isNullish() {
		return nil, nil
	}
	if spec.T != tDoc {
		return nil, errBadValue("sort must be an object")
	}
	var keys []sortKey
	for _, e := range spec.doc().E {
		var desc bool
		switch {
		case e.V.isNumber():
			n, _ := e.V.asInt64()
			if n != 1 && n != -1 {
				return nil, newErr(15975, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
			}
			desc = n == -1
		case e.V.T == tDoc:
			continue // {$meta: ...}
		default:
			return nil, newErr(15974, "Illegal key in $sort specification: %s: %s", e.K, shellString(e.V))
		}
		keys = append(keys, sortKey{parts: splitPath(e.K), desc: desc, natural: e.K == "$natural"})
	}
	return keys, nil
}

// sortValue picks the value a document sorts by: the minimum of all values
// at the path for ascending order, the maximum for descending; missing sorts
// as null and an empty array below null.
func sortValue(doc Val, k sortKey) Val {
	var vals []Val
	collectLeaves(doc, k.parts, &vals, true)
	if len(vals) == 0 {
		return vNull()
	}
	best := vals[0]
	for _, v := range vals[1:] {
		c := compareVals(v, best)
		if (!k.desc && c < 0) || (k.desc && c > 0) {
			best = v
		}
	}
	return best
}

// sortDocs sorts docs stably by keys. A leading $natural key only reverses.
func sortDocs(docs []Val, keys []sortKey) {
	if len(keys) == 0 {
		return
	}
	if keys[0].natural {
		if keys[0].desc {
			for i, j := 0, len(docs)-1; i < j; i, j = i+1, j-1 {
				docs[i], docs[j] = docs[j], docs[i]
			}
		}
		return
	}
	type item struct {
		doc  Val
		keys []Val
	}
	items := make([]item, len(docs))
	for i, d := range docs {
		ks := make([]Val, len(keys))
		for j, k := range keys {
			ks[j] = sortValue(d, k)
		}
		items[i] = item{doc: d, keys: ks}
	}
	sort.SliceStable(items, func(a, b int) bool {
		for j, k := range keys {
			c := compareVals(items[a].keys[j], items[b].keys[j])
			if c != 0 {
				if k.desc {
					return c > 0
				}
				return c < 0
			}
		}
		return false
	})
	for i := range items {
		docs[i] = items[i].doc
	}
}
