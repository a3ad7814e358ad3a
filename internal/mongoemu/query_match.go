package mongoemu

import (
	"math"
	"regexp"
	"strings"
)

// matcher reports whether a document (a tDoc Val) matches a filter.
type matcher func(doc Val) bool

func matchAll(Val) bool { return true }

// compileFilter compiles a query filter document.
func compileFilter(f Val) (matcher, error) {
	if !f.exists() || f.isNullish() {
		return matchAll, nil
	}
	if f.T != tDoc {
		return nil, errBadValue("filter must be an object")
	}
	d := f.doc()
	if len(d.E) == 0 {
		return matchAll, nil
	}
	var ms []matcher
	for _, e := range d.E {
		m, err := compileTop(e.K, e.V)
		if err != nil {
			return nil, err
		}
		if m != nil {
			ms = append(ms, m)
		}
	}
	return andMatchers(ms), nil
}

func andMatchers(ms []matcher) matcher {
	switch len(ms) {
	case 0:
		return matchAll
	case 1:
		return ms[0]
	}
	return func(doc Val) bool {
		for _, m := range ms {
			if !m(doc) {
				return false
			}
		}
		return true
	}
}

func compileTop(k string, v Val) (matcher, error) {
	switch k {
	case "$and", "$or", "$nor":
		if v.T != tArray || len(v.elems()) == 0 {
			return nil, errBadValue("%s must be a nonempty array", k)
		}
		var subs []matcher
		for _, e := range v.elems() {
			if e.T != tDoc {
				return nil, errBadValue("%s argument's entries must be objects", k)
			}
			m, err := compileFilter(e)
			if err != nil {
				return nil, err
			}
			subs = append(subs, m)
		}
		switch k {
		case "$and":
			return andMatchers(subs), nil
		case "$or":
			return func(doc Val) bool {
				for _, m := range subs {
					if m(doc) {
						return true
					}
				}
				return false
			}, nil
		default:
			return func(doc Val) bool {
				for _, m := range subs {
					if m(doc) {
						return false
					}
				}
				return true
			}, nil
		}
	case "$comment":
		return nil, nil
	case "$expr":
		return func(doc Val) bool {
			r, err := evalExpr(v, doc, nil)
			return err == nil && r.truthy()
		}, nil
	case "$where", "$text":
		return nil, errBadValue("%s is not supported", k)
	}
	if strings.HasPrefix(k, "$") {
		return nil, errBadValue("unknown top level operator: %s", k)
	}
	return compileField(splitPath(k), v)
}

func isOperatorDoc(v Val) bool {
	if v.T != tDoc {
		return false
	}
	d := v.doc()
	return len(d.E) > 0 && strings.HasPrefix(d.E[0].K, "$")
}

// compileField compiles the condition on one path.
func compileField(parts []string, v Val) (matcher, error) {
	if !isOperatorDoc(v) {
		if v.T == tRegex {
			p, err := regexPred(v)
			if err != nil {
				return nil, err
			}
			return pathMatcher(parts, p, true), nil
		}
		return pathMatcher(parts, eqPred(v), true), nil
	}
	d := v.doc()
	var ms []matcher
	opts := d.Get("$options")
	for _, e := range d.E {
		m, err := compileOp(parts, e.K, e.V, opts)
		if err != nil {
			return nil, err
		}
		if m != nil {
			ms = append(ms, m)
		}
	}
	return andMatchers(ms), nil
}

func pathMatcher(parts []string, pred func(Val) bool, expand bool) matcher {
	return func(doc Val) bool { return matchAt(doc, parts, pred, expand) }
}

func notMatcher(m matcher) matcher { return func(doc Val) bool { return !m(doc) } }

func compileOp(parts []string, op string, arg Val, opts Val) (matcher, error) {
	switch op {
	case "$eq":
		return pathMatcher(parts, eqPred(arg), true), nil
	case "$ne":
		return notMatcher(pathMatcher(parts, eqPred(arg), true)), nil
	case "$gt", "$gte", "$lt", "$lte":
		return pathMatcher(parts, cmpPred(op, arg), true), nil
	case "$in", "$nin":
		if arg.T != tArray {
			return nil, errBadValue("%s needs an array", op)
		}
		p, err := inPred(arg.elems())
		if err != nil {
			return nil, err
		}
		m := pathMatcher(parts, p, true)
		if op == "$nin" {
			return notMatcher(m), nil
		}
		return m, nil
	case "$exists":
		m := pathMatcher(parts, func(v Val) bool { return v.exists() }, false)
		if arg.truthy() {
			return m, nil
		}
		return notMatcher(m), nil
	case "$type":
		p, err := typePred(arg)
		if err != nil {
			return nil, err
		}
		return pathMatcher(parts, p, true), nil
	case "$regex":
		re := arg
		if arg.T == tString {
			re = Val{T: tRegex, B: append(append(append([]byte(arg.str()), 0), opts.str()...), 0)}
		}
		p, err := regexPred(re)
		if err != nil {
			return nil, err
		}
		return pathMatcher(parts, p, true), nil
	case "$options":
		return nil, nil
	case "$not":
		if arg.T == tRegex {
			p, err := regexPred(arg)
			if err != nil {
				return nil, err
			}
			return notMatcher(pathMatcher(parts, p, true)), nil
		}
		if !isOperatorDoc(arg) {
			return nil, errBadValue("$not needs a regex or a document")
		}
		m, err := compileField(parts, arg)
		if err != nil {
			return nil, err
		}
		return notMatcher(m), nil
	case "$elemMatch":
		if arg.T != tDoc {
			return nil, errBadValue("$elemMatch needs an Object")
		}
		var elemM matcher
		var err error
		if isOperatorDoc(arg) && !isLogical(arg.doc().E[0].K) {
			elemM, err = compileField(nil, arg)
		} else {
			elemM, err = compileFilter(arg)
		}
		if err != nil {
			return nil, err
		}
		valueMode := isOperatorDoc(arg) && !isLogical(arg.doc().E[0].K)
		return pathMatcher(parts, func(v Val) bool {
			if v.T != tArray {
				return false
			}
			for _, e := range v.elems() {
				if valueMode {
					if elemM(e) {
						return true
					}
				} else if e.T == tDoc && elemM(e) {
					return true
				}
			}
			return false
		}, false), nil
	case "$size":
		n, ok := arg.asInt64()
		if !ok {
			return nil, errBadValue("$size needs a number")
		}
		return pathMatcher(parts, func(v Val) bool { return v.T == tArray && int64(len(v.elems())) == n }, false), nil
	case "$all":
		if arg.T != tArray {
			return nil, errBadValue("$all needs an array")
		}
		els := arg.elems()
		if len(els) == 0 {
			return func(Val) bool { return false }, nil
		}
		var ms []matcher
		for _, e := range els {
			if e.T == tDoc && e.doc().index("$elemMatch") == 0 {
				m, err := compileOp(parts, "$elemMatch", e.doc().Get("$elemMatch"), missing)
				if err != nil {
					return nil, err
				}
				ms = append(ms, m)
				continue
			}
			m, err := compileField(parts, e)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
		return andMatchers(ms), nil
	case "$mod":
		els := arg.elems()
		if arg.T != tArray || len(els) != 2 {
			return nil, errBadValue("malformed mod, needs to be an array of 2 elements")
		}
		div, _ := els[0].asInt64()
		rem, _ := els[1].asInt64()
		if div == 0 {
			return nil, errBadValue("divisor cannot be 0")
		}
		return pathMatcher(parts, func(v Val) bool {
			if !v.isNumber() {
				return false
			}
			f, _ := v.asFloat()
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return false
			}
			n, _ := v.asInt64()
			return n%div == rem
		}, true), nil
	case "$comment":
		return nil, nil
	}
	return nil, errBadValue("unknown operator: %s", op)
}

func isLogical(k string) bool { return k == "$and" || k == "$or" || k == "$nor" || k == "$expr" }

// eqPred implements equality; null also matches missing and undefined.
func eqPred(x Val) func(Val) bool {
	if x.T == tNull {
		return func(v Val) bool { return v.isNullish() }
	}
	return func(v Val) bool { return valsEqual(v, x) }
}

// cmpPred implements $gt/$gte/$lt/$lte with MongoDB's type bracketing: only
// values of the same canonical type compare.
func cmpPred(op string, x Val) func(Val) bool {
	rx := typeRank(x)
	return func(v Val) bool {
		if x.T == tMinKey || x.T == tMaxKey {
			if !v.exists() {
				return false
			}
		} else if typeRank(v) != rx || (!v.exists() && x.T != tNull) {
			return false
		}
		c := compareVals(v, x)
		if v.isNumber() && x.isNumber() && (special(v) == -2 || special(x) == -2) {
			// NaN only equals NaN.
			if op == "$gte" || op == "$lte" {
				return special(v) == -2 && special(x) == -2
			}
			return false
		}
		switch op {
		case "$gt":
			return c > 0
		case "$gte":
			return c >= 0
		case "$lt":
			return c < 0
		}
		return c <= 0
	}
}

func inPred(list []Val) (func(Val) bool, error) {
	preds := make([]func(Val) bool, 0, len(list))
	for _, x := range list {
		if x.T == tRegex {
			p, err := regexPred(x)
			if err != nil {
				return nil, err
			}
			preds = append(preds, p)
			continue
		}
		preds = append(preds, eqPred(x))
	}
	return func(v Val) bool {
		for _, p := range preds {
			if p(v) {
				return true
			}
		}
		return false
	}, nil
}

var typeAliases = map[string]int{
	"double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6,
	"objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "dbPointer": 12,
	"javascript": 13, "symbol": 14, "javascriptWithScope": 15, "int": 16,
	"timestamp": 17, "long": 18, "decimal": 19, "minKey": -1, "maxKey": 127,
}

func typePred(arg Val) (func(Val) bool, error) {
	var codes []int
	var number bool
	add := func(v Val) error {
		if v.T == tString {
			if v.str() == "number" {
				number = true
				return nil
			}
			c, ok := typeAliases[v.str()]
			if !ok {
				return errBadValue("Unknown type name alias: %s", v.str())
			}
			codes = append(codes, c)
			return nil
		}
		n, ok := v.asInt64()
		if !ok {
			return errBadValue("type must be represented as a number or a string")
		}
		codes = append(codes, int(n))
		return nil
	}
	if arg.T == tArray {
		for _, e := range arg.elems() {
			if err := add(e); err != nil {
				return nil, err
			}
		}
	} else if err := add(arg); err != nil {
		return nil, err
	}
	return func(v Val) bool {
		if !v.exists() {
			return false
		}
		if number && v.isNumber() {
			return true
		}
		code := int(v.T)
		if v.T == tMinKey {
			code = -1
		}
		for _, c := range codes {
			if c == code {
				return true
			}
		}
		return false
	}, nil
}

func compileRegex(pattern, options string) (*regexp.Regexp, error) {
	flags := ""
	for _, o := range options {
		switch o {
		case 'i', 'm', 's':
			flags += string(o)
		case 'x':
			pattern = stripExtended(pattern)
		}
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, newErr(51091, "Regular expression is invalid: %v", err)
	}
	return re, nil
}

func stripExtended(p string) string {
	var b strings.Builder
	for _, c := range p {
		if c != ' ' && c != '\t' && c != '\n' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func regexPred(x Val) (func(Val) bool, error) {
	pattern, options := x.core().Regex()
	re, err := compileRegex(pattern, options)
	if err != nil {
		return nil, err
	}
	return func(v Val) bool {
		switch v.T {
		case tString, tSymbol:
			return re.MatchString(v.str())
		case tRegex:
			p, o := v.core().Regex()
			return p == pattern && o == options
		}
		return false
	}, nil
}
