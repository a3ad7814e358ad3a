package mongoemu

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// evalExpr evaluates an aggregation expression against doc. vars holds
// user variables ($$name); ROOT and CURRENT default to doc.
func evalExpr(e Val, doc Val, vars map[string]Val) (Val, error) {
	switch e.T {
	case tString:
		s := e.str()
		if strings.HasPrefix(s, "$$") {
			name, rest, _ := strings.Cut(s[2:], ".")
			var base Val
			switch name {
			case "ROOT", "CURRENT":
				base = doc
				if v, ok := vars[name]; ok {
					base = v
				}
			case "REMOVE":
				return missing, nil
			case "NOW":
				base = vDate(nowMS())
			default:
				v, ok := vars[name]
				if !ok {
					return missing, newErr(17276, "Use of undefined variable: %s", name)
				}
				base = v
			}
			if rest == "" {
				return base, nil
			}
			return fieldPathValue(base, splitPath(rest)), nil
		}
		if strings.HasPrefix(s, "$") {
			return fieldPathValue(doc, splitPath(s[1:])), nil
		}
		return e, nil
	case tArray:
		els := e.elems()
		out := make([]Val, 0, len(els))
		for _, x := range els {
			v, err := evalExpr(x, doc, vars)
			if err != nil {
				return missing, err
			}
			if !v.exists() {
				v = vNull()
			}
			out = append(out, v)
		}
		return vArr(out), nil
	case tDoc:
		d := e.doc()
		if len(d.E) == 1 && strings.HasPrefix(d.E[0].K, "$") {
			return evalOperator(d.E[0].K, d.E[0].V, doc, vars)
		}
		out := &Doc{}
		for _, el := range d.E {
			v, err := evalExpr(el.V, doc, vars)
			if err != nil {
				return missing, err
			}
			if v.exists() {
				out.Append(el.K, v)
			}
		}
		return vDoc(out), nil
	}
	return e, nil
}

// fieldPathValue evaluates "$a.b" with array traversal: traversing an array
// yields an array of the sub-values.
func fieldPathValue(v Val, parts []string) Val {
	if len(parts) == 0 {
		return v
	}
	switch v.T {
	case tDoc:
		return fieldPathValue(v.field(parts[0]), parts[1:])
	case tArray:
		var out []Val
		for _, e := range v.elems() {
			if e.T != tDoc && e.T != tArray {
				continue
			}
			r := fieldPathValue(e, parts)
			if r.exists() {
				out = append(out, r)
			}
		}
		return vArr(out)
	}
	return missing
}

func evalArgs(arg Val, doc Val, vars map[string]Val) ([]Val, error) {
	var raw []Val
	if arg.T == tArray {
		raw = arg.elems()
	} else {
		raw = []Val{arg}
	}
	out := make([]Val, len(raw))
	for i, r := range raw {
		v, err := evalExpr(r, doc, vars)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func evalOperator(op string, arg Val, doc Val, vars map[string]Val) (Val, error) {
	if op == "$literal" {
		return arg, nil
	}
	if op == "$cond" {
		var ifE, thenE, elseE Val
		if arg.T == tArray {
			els := arg.elems()
			if len(els) != 3 {
				return missing, errBadValue("$cond needs 3 arguments")
			}
			ifE, thenE, elseE = els[0], els[1], els[2]
		} else {
			ifE, thenE, elseE = arg.field("if"), arg.field("then"), arg.field("else")
		}
		c, err := evalExpr(ifE, doc, vars)
		if err != nil {
			return missing, err
		}
		if c.truthy() {
			return evalExpr(thenE, doc, vars)
		}
		return evalExpr(elseE, doc, vars)
	}
	if op == "$let" {
		nv := map[string]Val{}
		for k, v := range vars {
			nv[k] = v
		}
		for _, e := range arg.field("vars").doc().E {
			v, err := evalExpr(e.V, doc, vars)
			if err != nil {
				return missing, err
			}
			nv[e.K] = v
		}
		return evalExpr(arg.field("in"), doc, nv)
	}
	args, err := evalArgs(arg, doc, vars)
	if err != nil {
		return missing, err
	}
	a0 := func() Val {
		if len(args) > 0 {
			return args[0]
		}
		return missing
	}
	switch op {
	case "$add", "$multiply":
		return arith(op, args)
	case "$subtract", "$divide", "$mod":
		if len(args) != 2 {
			return missing, errBadValue("%s needs 2 arguments", op)
		}
		return arith(op, args)
	case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$cmp":
		if len(args) != 2 {
			return missing, errBadValue("%s needs 2 arguments", op)
		}
		c := compareVals(args[0], args[1])
		switch op {
		case "$eq":
			return vBool(c == 0), nil
		case "$ne":
			return vBool(c != 0), nil
		case "$gt":
			return vBool(c > 0), nil
		case "$gte":
			return vBool(c >= 0), nil
		case "$lt":
			return vBool(c < 0), nil
		case "$lte":
			return vBool(c <= 0), nil
		}
		return vInt32(int32(c)), nil
	case "$and":
		for _, a := range args {
			if !a.truthy() {
				return vBool(false), nil
			}
		}
		return vBool(true), nil
	case "$or":
		for _, a := range args {
			if a.truthy() {
				return vBool(true), nil
			}
		}
		return vBool(false), nil
	case "$not":
		return vBool(!a0().truthy()), nil
	case "$ifNull":
		for _, a := range args {
			if !a.isNullish() {
				return a, nil
			}
		}
		if len(args) > 0 {
			return args[len(args)-1], nil
		}
		return vNull(), nil
	case "$concat":
		var b strings.Builder
		for _, a := range args {
			if a.isNullish() {
				return vNull(), nil
			}
			if a.T != tString {
				return missing, newErr(16702, "$concat only supports strings, not %s", typeName(a))
			}
			b.WriteString(a.str())
		}
		return vString(b.String()), nil
	case "$toLower", "$toUpper":
		s := toStr(a0())
		if op == "$toLower" {
			return vString(strings.ToLower(s)), nil
		}
		return vString(strings.ToUpper(s)), nil
	case "$toString":
		if a0().isNullish() {
			return vNull(), nil
		}
		return vString(toStr(a0())), nil
	case "$size":
		if a0().T != tArray {
			return missing, newErr(17124, "The argument to $size must be an array. Type of argument: %s", typeName(a0()))
		}
		return vInt32(int32(len(a0().elems()))), nil
	case "$isArray":
		return vBool(a0().T == tArray), nil
	case "$arrayElemAt":
		if len(args) != 2 || args[0].T != tArray {
			return vNull(), nil
		}
		els := args[0].elems()
		i, _ := args[1].asInt64()
		if i < 0 {
			i += int64(len(els))
		}
		if i < 0 || i >= int64(len(els)) {
			return missing, nil
		}
		return els[i], nil
	case "$first", "$last":
		if a0().T != tArray {
			return a0(), nil
		}
		els := a0().elems()
		if len(els) == 0 {
			return missing, nil
		}
		if op == "$first" {
			return els[0], nil
		}
		return els[len(els)-1], nil
	case "$concatArrays":
		var out []Val
		for _, a := range args {
			if a.isNullish() {
				return vNull(), nil
			}
			out = append(out, a.elems()...)
		}
		return vArr(out), nil
	case "$in":
		if len(args) != 2 || args[1].T != tArray {
			return missing, newErr(40081, "$in requires an array as a second argument")
		}
		for _, e := range args[1].elems() {
			if valsEqual(e, args[0]) {
				return vBool(true), nil
			}
		}
		return vBool(false), nil
	case "$mergeObjects":
		out := &Doc{}
		for _, a := range args {
			if a.T == tDoc {
				for _, e := range a.doc().E {
					out.Set(e.K, e.V)
				}
			}
		}
		return vDoc(out), nil
	case "$type":
		if !a0().exists() {
			return vString("missing"), nil
		}
		return vString(typeName(a0())), nil
	case "$abs":
		f, ok := a0().asFloat()
		if !ok {
			return vNull(), nil
		}
		if a0().T == tInt32 || a0().T == tInt64 {
			n, _ := a0().asInt64()
			if n < 0 {
				n = -n
			}
			return vNumberLike(a0().T, n), nil
		}
		return vDouble(math.Abs(f)), nil
	case "$sum", "$avg", "$max", "$min":
		vals := args
		if len(args) == 1 && args[0].T == tArray {
			vals = args[0].elems()
		}
		acc := newAccumulator(op)
		for _, v := range vals {
			acc.add(v)
		}
		return acc.result(), nil
	case "$toInt", "$toLong", "$toDouble":
		f, ok := a0().asFloat()
		if !ok {
			if a0().T == tString {
				pf, err := strconv.ParseFloat(a0().str(), 64)
				if err != nil {
					return missing, newErr(241, "Failed to parse number '%s'", a0().str())
				}
				f = pf
			} else {
				return vNull(), nil
			}
		}
		switch op {
		case "$toInt":
			return vInt32(int32(f)), nil
		case "$toLong":
			return vInt64(int64(f)), nil
		}
		return vDouble(f), nil
	case "$objectToArray":
		var out []Val
		for _, e := range a0().doc().E {
			out = append(out, vDoc(docOf("k", e.K, "v", e.V)))
		}
		return vArr(out), nil
	case "$arrayToObject":
		out := &Doc{}
		for _, e := range a0().elems() {
			if e.T == tDoc {
				out.Set(e.field("k").str(), e.field("v"))
			} else if p := e.elems(); len(p) == 2 {
				out.Set(p[0].str(), p[1])
			}
		}
		return vDoc(out), nil
	}
	return missing, newErr(168, "Unrecognized expression '%s'", op)
}

func vNumberLike(t bsoncore.Type, n int64) Val {
	if t == tInt32 && n <= math.MaxInt32 && n >= math.MinInt32 {
		return vInt32(int32(n))
	}
	return vInt64(n)
}

// arith implements $add/$subtract/$multiply/$divide/$mod on numbers (and
// date +/- number).
func arith(op string, args []Val) (Val, error) {
	for _, a := range args {
		if a.isNullish() {
			return vNull(), nil
		}
	}
	if op == "$add" || op == "$subtract" {
		for i, a := range args {
			if a.T == tDate {
				ms := a.dateMS()
				for j, b := range args {
					if j == i {
						continue
					}
					n, _ := b.asFloat()
					if op == "$subtract" {
						if b.T == tDate {
							return vInt64(ms - b.dateMS()), nil
						}
						n = -n
					}
					ms += int64(n)
				}
				return vDate(ms), nil
			}
		}
	}
	allInt, isLong := true, false
	for _, a := range args {
		if !a.isNumber() {
			return missing, newErr(16554, "%s only supports numeric types, not %s", op, typeName(a))
		}
		if a.T == tDouble || a.T == tDecimal {
			allInt = false
		}
		if a.T == tInt64 {
			isLong = true
		}
	}
	if op == "$divide" {
		x, _ := args[0].asFloat()
		y, _ := args[1].asFloat()
		if y == 0 {
			return missing, newErr(2, "can't $divide by zero")
		}
		return vDouble(x / y), nil
	}
	if allInt {
		acc, _ := args[0].asInt64()
		for _, a := range args[1:] {
			n, _ := a.asInt64()
			switch op {
			case "$add":
				acc += n
			case "$subtract":
				acc -= n
			case "$multiply":
				acc *= n
			case "$mod":
				if n == 0 {
					return missing, newErr(16610, "can't $mod by 0")
				}
				acc %= n
			}
		}
		if !isLong && acc >= math.MinInt32 && acc <= math.MaxInt32 {
			return vInt32(int32(acc)), nil
		}
		return vInt64(acc), nil
	}
	acc, _ := args[0].asFloat()
	for _, a := range args[1:] {
		n, _ := a.asFloat()
		switch op {
		case "$add":
			acc += n
		case "$subtract":
			acc -= n
		case "$multiply":
			acc *= n
		case "$mod":
			acc = math.Mod(acc, n)
		}
	}
	return vDouble(acc), nil
}

func toStr(v Val) string {
	switch v.T {
	case tString, tSymbol:
		return v.str()
	case tInt32, tInt64:
		n, _ := v.asInt64()
		return strconv.FormatInt(n, 10)
	case tDouble:
		f, _ := v.asFloat()
		return strconv.FormatFloat(f, 'g', -1, 64)
	case tBool:
		return strconv.FormatBool(v.boolean())
	case tOID:
		return hex.EncodeToString(v.B)
	}
	return shellString(v)
}

func typeName(v Val) string {
	for name, code := range typeAliases {
		if code == int(v.T) || (v.T == tMinKey && code == -1) {
			return name
		}
	}
	return "missing"
}
