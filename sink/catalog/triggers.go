package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Triggers. The sink's writes fire the table's user triggers like any
// other write: on a root table INSERT (new keys; a BEFORE INSERT trigger
// also sees each proposed row that then conflicts), UPDATE (existing keys)
// and DELETE; on a descendant table DELETE and INSERT, since a parent's
// rows are replaced, never updated. target.disable_triggers: true applies
// with session_replication_role = replica, which skips ordinary triggers
// (and foreign-key checks) but not ENABLE ALWAYS ones, and fires ENABLE
// REPLICA ones.

// pg_trigger.tgtype bits.
const (
	tgRow     = 1 << 0
	tgBefore  = 1 << 1
	tgInsert  = 1 << 2
	tgDelete  = 1 << 3
	tgUpdate  = 1 << 4
	tgInstead = 1 << 6
)

// assignRE finds statements of a trigger function that assign a column of
// NEW (NEW.col := ... or NEW.col = ...), at the start of a statement.
var assignRE = regexp.MustCompile(`(?is)(?:^|;|\bthen|\belse|\bbegin|\bloop)\s*new\s*\.\s*"?([a-z_][a-z0-9_$]*)"?\s*:?=`)

func (c *check) triggers() {
	events := tgInsert | tgUpdate | tgDelete
	if c.def.Root != "" {
		events = tgInsert | tgDelete
	}
	for _, g := range c.t.triggers {
		// Which triggers fire depends on session_replication_role: origin
		// (the default) fires ENABLE (O) and ENABLE ALWAYS (A), replica
		// (target.disable_triggers) ENABLE REPLICA (R) and ENABLE ALWAYS.
		fires := g.enabled == 'A' || (g.enabled == 'O' && !c.opts.DisableTriggers) || (g.enabled == 'R' && c.opts.DisableTriggers)
		if !fires || int(g.typ)&events == 0 {
			continue // not fired by the sink's writes
		}
		c.trigger(g)
	}
}

func (c *check) trigger(g trigger) {
	timing := "AFTER"
	switch {
	case g.typ&tgInstead != 0:
		timing = "INSTEAD OF"
	case g.typ&tgBefore != 0:
		timing = "BEFORE"
	}
	var ev []string
	for _, e := range []struct {
		bit  int16
		name string
	}{{tgInsert, "INSERT"}, {tgUpdate, "UPDATE"}, {tgDelete, "DELETE"}} {
		if g.typ&e.bit != 0 {
			ev = append(ev, e.name)
		}
	}
	level := "FOR EACH STATEMENT"
	if g.typ&tgRow != 0 {
		level = "FOR EACH ROW"
	}
	head := fmt.Sprintf("%s %s trigger %s (%s, %s)", timing, strings.Join(ev, " OR "), g.name, level, g.fn)

	var effect, col string
	writes := g.typ&(tgInsert|tgUpdate) != 0
	switch {
	case timing == "BEFORE" && g.typ&tgRow != 0 && writes:
		var sets []string
		for _, m := range assignRE.FindAllStringSubmatch(g.src, -1) {
			name := strings.ToLower(m[1])
			if c.mapped(name) && !slices.Contains(sets, name) {
				sets = append(sets, name)
			}
		}
		if len(sets) > 0 {
			col = sets[0]
			effect = fmt.Sprintf("fires on replicated writes and sets %s, which the mapping writes: the row keeps the trigger's value, not the source's", strings.Join(sets, ", "))
		} else {
			effect = "fires on replicated writes and may change the values the mapping writes before they are stored (or skip the write)"
		}
	case timing == "BEFORE" && g.typ&tgRow != 0:
		effect = "fires on replicated deletes and may skip them"
	default:
		effect = "fires on replicated writes: its side effects happen for every row the replicator writes"
	}
	if c.def.Root != "" {
		effect += "; this table's rows are deleted and inserted again whenever their parent changes"
	}

	r := c.live.role
	var option string
	switch g.enabled {
	case 'A':
		option = "it is ENABLE ALWAYS, so it fires even with target.disable_triggers: true"
	case 'R':
		option = "it is ENABLE REPLICA, so it fires because target.disable_triggers is true"
	default:
		may := fmt.Sprintf("the role %s may set it", r.name)
		if !r.setReplicationRole {
			may = fmt.Sprintf("the role %s may not: it needs superuser or GRANT SET ON PARAMETER session_replication_role TO %s", r.name, r.quoted)
		}
		option = "target.disable_triggers: true applies without it (session_replication_role = replica, which also skips foreign-key checks; " + may + ")"
	}
	c.add(Warning, col, "%s %s; %s", head, effect, option)
}
