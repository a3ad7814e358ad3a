package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mongopg/replicator/transform"
)

// Constraints a mapped row may violate. The sink dead-letters a row that
// violates one (SQLSTATE class 23) and goes on, so these are warnings:
// CHECK constraints, foreign keys to rows the mapping may not have
// written, and foreign keys from other tables onto rows the sink deletes.

// checks lists the CHECK constraints on columns the mapping writes.
func (c *check) checks() {
	for _, k := range c.t.checks {
		if len(k.cols) > 0 && !slices.ContainsFunc(k.cols, c.mapped) {
			continue // only columns the mapping never writes
		}
		col := ""
		if len(k.cols) == 1 {
			col = k.cols[0]
		}
		c.add(Warning, col, "CHECK constraint %s %s: a document whose values violate it is dead-lettered (23514)", k.name, k.def)
	}
}

// group is the root table of def: the tables of one mapping, which the
// sink writes in one transaction, root first.
func group(name string, tables []transform.TableDef) string {
	for _, t := range tables {
		if t.Name == name {
			if t.Root != "" {
				return t.Root
			}
			return t.Name
		}
	}
	return ""
}

var onDelete = map[byte]string{'a': "NO ACTION", 'r': "RESTRICT", 'c': "CASCADE", 'n': "SET NULL", 'd': "SET DEFAULT"}

func (c *check) foreignKeys() {
	own := group(c.def.Name, c.all)
	if c.opts.DisableTriggers {
		// session_replication_role = replica skips the foreign-key
		// checks of the replicator's writes: nothing is refused, and the
		// source alone keeps the references whole.
		return
	}
	for _, k := range c.t.fksOut {
		if !slices.ContainsFunc(k.cols, c.mapped) {
			continue // NULL or a default: nothing the mapping decides
		}
		col := ""
		if len(k.cols) == 1 {
			col = k.cols[0]
		}
		switch g := group(k.to, c.all); {
		case g == own:
			// Written in the same transaction, referenced rows first.
		case g != "":
			c.add(Warning, col, "foreign key %s %s: %s is written by another mapping, and collections apply independently, so a row can arrive before the row it references and is then dead-lettered (23503)",
				k.name, k.def, k.to)
		default:
			c.add(Warning, col, "foreign key %s %s: no mapping writes %s, so a row that references a row missing there is dead-lettered (23503)",
				k.name, k.def, k.to)
		}
	}
	for _, k := range c.t.fksIn {
		if group(k.from, c.all) == own {
			continue
		}
		action := onDelete[k.onDelete]
		restrict := k.onDelete == 'a' || k.onDelete == 'r'
		var what string
		switch {
		case c.def.Root != "" && restrict:
			what = fmt.Sprintf("this table's rows are deleted and inserted again whenever their parent changes, so such a change fails while rows of %s reference them and is dead-lettered (23503)", k.from)
		case c.def.Root != "" && k.onDelete == 'c':
			what = fmt.Sprintf("this table's rows are deleted and inserted again whenever their parent changes, and each time the rows of %s that reference them are deleted", k.from)
		case c.def.Root != "":
			what = fmt.Sprintf("this table's rows are deleted and inserted again whenever their parent changes, and each time the references to them in %s are cleared (%s)", k.from, action)
		case restrict:
			what = fmt.Sprintf("a replicated delete of a row that rows of %s reference fails and is dead-lettered (23503)", k.from)
		default:
			continue // the application's own choice for deleted rows
		}
		def := k.def
		if !strings.Contains(def, "ON DELETE") {
			def += " ON DELETE " + action
		}
		c.add(Warning, "", "%s references this table (foreign key %s %s): %s", k.from, k.name, def, what)
	}
}
