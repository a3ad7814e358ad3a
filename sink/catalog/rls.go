package catalog

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Row-level security. A role bypasses a table's policies when it is a
// superuser, has BYPASSRLS, or has the owner's privileges on a table
// without FORCE ROW LEVEL SECURITY. Otherwise every write is checked
// against the policies, and COPY into the table is refused (0A000). The
// sink can write such a table when the mapping names the session variable
// the policies read (tenant_id.setting, TableDef.TenantSetting): it then
// sets it to each row's tenant inside its transaction and does not COPY.

// settingRE finds the session variables a policy expression reads, as
// pg_get_expr prints them: current_setting('app.tenant_id'::text[, true]).
var settingRE = regexp.MustCompile(`current_setting\('((?:[^']|'')+)'`)

// policyCmds names pg_policy.polcmd values.
var policyCmds = map[byte]string{'*': "ALL", 'r': "SELECT", 'a': "INSERT", 'w': "UPDATE", 'd': "DELETE"}

// bypassesRLS reports whether the connecting role bypasses t's policies.
func (c *check) bypassesRLS() bool {
	r := c.live.role
	return !c.t.rls || r.super || r.bypassRLS || c.t.ownedBy && !c.t.forceRLS
}

// commands lists the statements the sink runs on the table: upserts,
// deletes and reads on a root table; deletes, inserts and reads of
// descendant rows, which are replaced, never updated.
func (c *check) commands() []string {
	if c.def.Root == "" {
		return []string{"SELECT", "INSERT", "UPDATE", "DELETE"}
	}
	return []string{"SELECT", "INSERT", "DELETE"}
}

func (c *check) rowSecurity() {
	if !c.t.rls {
		return
	}
	// The variables the policies that apply to the role read, each with
	// the first policy that reads it.
	var vars []string
	readBy := map[string]string{}
	for _, p := range c.t.policies {
		if !p.applies {
			continue
		}
		for _, m := range settingRE.FindAllStringSubmatch(p.expr, -1) {
			v := strings.ReplaceAll(m[1], "''", "'")
			if _, ok := readBy[v]; !ok {
				readBy[v] = p.name
				vars = append(vars, v)
			}
		}
	}
	reads := make([]string, len(vars))
	for i, v := range vars {
		reads[i] = fmt.Sprintf("policy %s reads %s", readBy[v], v)
	}
	setting := c.def.TenantSetting
	if setting != "" && readBy[setting] == "" {
		if len(vars) > 0 {
			c.add(Warning, "", "tenant_id.setting is %s, but no policy of this table reads it (%s): set it to the variable the policies read",
				setting, strings.Join(reads, ", "))
		} else {
			c.add(Warning, "", "tenant_id.setting is %s, but no policy of this table reads it with current_setting directly: make sure the functions the policies call read it",
				setting)
		}
	}
	if c.bypassesRLS() {
		return
	}
	r := c.live.role
	bypass := fmt.Sprintf("run as a role with BYPASSRLS (ALTER ROLE %s BYPASSRLS)", r.quoted)
	state := fmt.Sprintf("FORCE ROW LEVEL SECURITY is set and the role %s does not bypass RLS (not a superuser, no BYPASSRLS)", r.name)
	if !c.t.forceRLS {
		state = fmt.Sprintf("row-level security is enabled and the role %s neither owns the table nor bypasses RLS (not a superuser, no BYPASSRLS)", r.name)
	}
	if len(c.t.policies) == 0 {
		c.add(Error, "", "%s, and the table has no policy, so every row is refused: add a policy, or %s", state, bypass)
		return
	}
	for _, cmd := range c.commands() {
		allowed := slices.ContainsFunc(c.t.policies, func(p policy) bool {
			return p.applies && p.permissive && (p.cmd == '*' || policyCmds[p.cmd] == cmd)
		})
		if !allowed {
			c.add(Error, "", "%s, and no permissive policy lets it %s (the sink needs %s): CREATE POLICY ... ON %s FOR %s TO %s ..., or %s",
				state, cmd, strings.Join(c.commands(), ", "), c.t.quoted, cmd, r.quoted, bypass)
		}
	}
	switch {
	case setting != "":
	case len(vars) > 0:
		c.add(Error, "", "%s, so its writes fail the policies, which read a session variable the sink does not set, and COPY into the table is refused (0A000): set tenant_id.setting to the variable the policies read (%s), or %s",
			state, strings.Join(reads, ", "), bypass)
	default:
		c.add(Error, "", "%s, so COPY into the table is refused (0A000), and no policy reads a session variable with current_setting directly: set tenant_id.setting to the variable the policies read through the functions they call, or %s",
			state, bypass)
	}
}
