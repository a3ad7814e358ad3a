package catalog

import (
	"fmt"
	"slices"
	"strings"
)

// The key: the sink writes a root row with INSERT ... ON CONFLICT (key
// columns) DO UPDATE, which needs a unique index on exactly those columns
// that PostgreSQL accepts as its arbiter: the primary key, a UNIQUE
// constraint or a unique index, in any column order, but not partial, not
// on expressions, not deferrable and valid. Descendant tables are matched
// the same way.

// sameSet reports whether a and b hold the same names, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// containsAll reports whether a holds every name of b.
func containsAll(a, b []string) bool {
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// arbiter reports whether ON CONFLICT on x's columns can use x.
func arbiter(x index) bool {
	return x.unique && x.valid && !x.deferrable && !x.expression && x.predicate == ""
}

// describe names an index the way its DDL does.
func describe(x index) string {
	switch x.kind {
	case 'p':
		return "PRIMARY KEY " + x.constraint
	case 'u':
		return "UNIQUE constraint " + x.constraint
	}
	if x.unique {
		return "unique index " + x.name
	}
	return "index " + x.name
}

// key checks that ON CONFLICT (key) finds a unique index to use.
func (c *check) key() {
	key := c.def.Key
	var near []index // unique on exactly the key, but not usable
	for _, x := range c.t.indexes {
		if !x.unique || x.expression || !sameSet(x.cols, key) {
			continue
		}
		if arbiter(x) {
			return
		}
		near = append(near, x)
	}
	keyList := strings.Join(key, ", ")
	fix := fmt.Sprintf("ALTER TABLE %s ADD UNIQUE (%s)", c.t.quoted, c.list(key))
	if len(near) == 0 {
		pk := "there is none"
		for _, x := range c.t.indexes {
			if x.kind == 'p' {
				pk = "(" + strings.Join(x.cols, ", ") + ")"
			}
		}
		c.add(Error, "", "the key (%s) is neither the primary key (%s) nor a UNIQUE constraint or unique index, so INSERT ... ON CONFLICT (%s) is refused: %s",
			keyList, pk, keyList, fix)
		return
	}
	for _, x := range near {
		switch {
		case x.predicate != "":
			c.add(Error, "", "%s on the key (%s) is partial (WHERE %s): INSERT ... ON CONFLICT (%s) cannot use it without its predicate; add a full one: %s",
				describe(x), keyList, x.predicate, keyList, fix)
		case x.deferrable:
			kind := "UNIQUE"
			if x.kind == 'p' {
				kind = "PRIMARY KEY"
			}
			c.add(Error, "", "%s on the key (%s) is DEFERRABLE, which INSERT ... ON CONFLICT does not accept: ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s (%s)",
				describe(x), keyList, c.t.quoted, x.constraint, x.constraint, kind, c.list(key))
		default:
			c.add(Error, "", "%s on the key (%s) is invalid (a CREATE INDEX CONCURRENTLY that failed), so INSERT ... ON CONFLICT cannot use it: REINDEX INDEX %s",
				describe(x), keyList, x.name)
		}
	}
}

// uniques warns about unique indexes besides the key: two documents with
// different keys can still collide on them.
func (c *check) uniques() {
	for _, x := range c.t.indexes {
		if !x.unique || sameSet(x.cols, c.def.Key) && !x.expression {
			continue // the key itself (or a flawed copy, reported by key)
		}
		if !x.expression && containsAll(x.cols, c.def.Key) {
			continue // unique whenever the key is
		}
		if !x.expression && !slices.ContainsFunc(x.cols, c.mapped) {
			continue // only columns the mapping never writes
		}
		if !x.expression && slices.ContainsFunc(x.cols, c.perDocument) {
			continue // a column no two documents share (a uuid5 of _id)
		}
		on := strings.Join(x.cols, ", ")
		if x.expression {
			on = "expressions"
			if len(x.cols) > 0 {
				on = strings.Join(x.cols, ", ") + " and expressions"
			}
		}
		where := ""
		if x.predicate != "" {
			where = " WHERE " + x.predicate
		}
		col := ""
		if len(x.cols) == 1 && !x.expression {
			col = x.cols[0]
		}
		c.add(Warning, col, "%s on (%s)%s besides the key (%s): two documents with different keys but equal values there collide, and the later write is dead-lettered (23505)",
			describe(x), on, where, strings.Join(c.def.Key, ", "))
	}
}

// rootKeyIndex warns when a descendant table has no index leading with
// the columns that hold its root row: the sink replaces and deletes a
// parent's rows by those columns.
func (c *check) rootKeyIndex() {
	n := len(c.def.RootKey)
	if c.def.Root == "" || n == 0 {
		return
	}
	for _, x := range c.t.indexes {
		if x.valid && !x.expression && x.predicate == "" && len(x.cols) >= n && sameSet(x.cols[:n], c.def.RootKey) {
			return
		}
	}
	c.add(Warning, "", "no index starts with (%s), the columns that hold the parent row: replacing or deleting a parent's rows scans the whole table: CREATE INDEX ON %s (%s)",
		strings.Join(c.def.RootKey, ", "), c.t.quoted, c.list(c.def.RootKey))
}

// perDocument reports whether the mapping writes column name with a value
// no two documents share (transform.ColumnDef.PerDocument).
func (c *check) perDocument(name string) bool {
	for _, col := range c.def.Columns {
		if col.Name == name {
			return col.PerDocument
		}
	}
	return false
}
