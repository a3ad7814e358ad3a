package mongoemu

import (
	"encoding/hex"
	"strconv"
	"strings"
)

func splitPath(p string) []string { return strings.Split(p, ".") }

// arrayIndex parses a path component as an array index.
func arrayIndex(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// getPath follows a dotted path through documents and array indexes without
// implicit array traversal.
func getPath(v Val, path string) Val {
	for len(path) > 0 {
		var part string
		if i := strings.IndexByte(path, '.'); i >= 0 {
			part, path = path[:i], path[i+1:]
		} else {
			part, path = path, ""
		}
		switch v.T {
		case tDoc:
			v = v.field(part)
		case tArray:
			i, ok := arrayIndex(part)
			els := v.elems()
			if !ok || i >= len(els) {
				return missing
			}
			v = els[i]
		default:
			return missing
		}
		if !v.exists() {
			return missing
		}
	}
	return v
}

// matchAt evaluates pred against the values a query path designates, with
// MongoDB's implicit array traversal: intermediate arrays are searched
// element by element (and by numeric index), and when expand is set a leaf
// array matches if the array itself or any element satisfies pred.
func matchAt(v Val, parts []string, pred func(Val) bool, expand bool) bool {
	if len(parts) == 0 {
		if pred(v) {
			return true
		}
		if expand && v.T == tArray {
			for _, e := range v.elems() {
				if pred(e) {
					return true
				}
			}
		}
		return false
	}
	switch v.T {
	case tDoc:
		return matchAt(v.field(parts[0]), parts[1:], pred, expand)
	case tArray:
		els := v.elems()
		if i, ok := arrayIndex(parts[0]); ok {
			if i < len(els) && matchAt(els[i], parts[1:], pred, expand) {
				return true
			}
		}
		sawDoc := false
		for _, e := range els {
			if e.T == tDoc {
				sawDoc = true
				if matchAt(e, parts, pred, expand) {
					return true
				}
			}
		}
		if !sawDoc {
			if _, isIdx := arrayIndex(parts[0]); !isIdx {
				return pred(missing)
			}
		}
		return false
	}
	return pred(missing)
}

// collectLeaves appends every value a path designates (with array
// traversal and leaf-array expansion), used for sort keys and distinct.
func collectLeaves(v Val, parts []string, out *[]Val, expandLeaf bool) {
	if len(parts) == 0 {
		if expandLeaf && v.T == tArray {
			els := v.elems()
			if len(els) == 0 {
				*out = append(*out, Val{T: tUndef})
			}
			*out = append(*out, els...)
			return
		}
		*out = append(*out, v)
		return
	}
	switch v.T {
	case tDoc:
		f := v.field(parts[0])
		if f.exists() {
			collectLeaves(f, parts[1:], out, expandLeaf)
		}
	case tArray:
		els := v.elems()
		if i, ok := arrayIndex(parts[0]); ok && i < len(els) {
			collectLeaves(els[i], parts[1:], out, expandLeaf)
			return
		}
		for _, e := range els {
			if e.T == tDoc {
				collectLeaves(e, parts, out, expandLeaf)
			}
		}
	}
}

// shellString renders a value like the server does in error messages.
func shellString(v Val) string {
	var b strings.Builder
	writeShell(&b, v)
	return b.String()
}

func writeShell(b *strings.Builder, v Val) {
	switch v.T {
	case tDoc:
		d := v.doc()
		if len(d.E) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{ ")
		for i, e := range d.E {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(e.K)
			b.WriteString(": ")
			writeShell(b, e.V)
		}
		b.WriteString(" }")
	case tArray:
		b.WriteString("[ ")
		for i, e := range v.elems() {
			if i > 0 {
				b.WriteString(", ")
			}
			writeShell(b, e)
		}
		b.WriteString(" ]")
	case tString:
		b.WriteString(strconv.Quote(v.str()))
	case tInt32, tInt64:
		n, _ := v.asInt64()
		b.WriteString(strconv.FormatInt(n, 10))
	case tDouble:
		f, _ := v.asFloat()
		b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case tDecimal:
		b.WriteString(decOf(v).String())
	case tOID:
		b.WriteString("ObjectId('" + hex.EncodeToString(v.B) + "')")
	case tBool:
		b.WriteString(strconv.FormatBool(v.boolean()))
	case tNull, 0:
		b.WriteString("null")
	case tDate:
		b.WriteString("new Date(" + strconv.FormatInt(v.dateMS(), 10) + ")")
	case tBinary:
		st, data := v.core().Binary()
		if st == 4 && len(data) == 16 {
			h := hex.EncodeToString(data)
			b.WriteString("UUID(\"" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:] + "\")")
			return
		}
		b.WriteString("BinData(" + strconv.Itoa(int(st)) + ", " + strings.ToUpper(hex.EncodeToString(data)) + ")")
	case tTS:
		t, i := v.timestamp()
		b.WriteString("Timestamp(" + strconv.FormatUint(uint64(t), 10) + ", " + strconv.FormatUint(uint64(i), 10) + ")")
	default:
		b.WriteString(v.core().String())
	}
}
