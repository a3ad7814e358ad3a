package transform

// This file is the contract between transform (which produces mutations),
// the buffer envelope (which carries them) and sink (which applies them).

// Hidden columns every root table carries so the sink can guard writes by
// source version (ARCHITECTURE.md, guarantee 2). Child tables do not carry them: a
// parent's children are replaced together with the parent under its guard.
const (
	// VersionTSColumn holds the cluster time seconds (BSON Timestamp T).
	VersionTSColumn = "_cdc_ts"
	// VersionIncColumn holds the cluster time increment (BSON Timestamp I).
	VersionIncColumn = "_cdc_inc"
	// VersionSeqColumn holds the order inside one cluster time, the
	// tie-breaker of versions (operations of one transaction share a
	// cluster time): the event's ordinal among the consecutive change events
	// of its cluster time in source order, 1 for the first (capture numbers
	// them, and every change envelope carries its ordinal). 0 for snapshot
	// rows, so a change at the snapshot's T0 wins over them.
	VersionSeqColumn = "_cdc_seq"
)

// ClusterTime is a BSON Timestamp: seconds and an increment.
type ClusterTime struct {
	T uint32 `json:"t"`
	I uint32 `json:"i"`
}

// Before reports whether c orders strictly before o.
func (c ClusterTime) Before(o ClusterTime) bool {
	return c.T < o.T || (c.T == o.T && c.I < o.I)
}

// IsZero reports whether c is the zero timestamp.
func (c ClusterTime) IsZero() bool { return c.T == 0 && c.I == 0 }

// Version orders writes to one row: cluster time first, then the order
// inside that cluster time.
type Version struct {
	ClusterTime ClusterTime `json:"ct"`
	// Seq is the order inside ClusterTime (VersionSeqColumn): the event's
	// ordinal in source order, 0 for snapshot rows.
	Seq uint64 `json:"seq"`
}

// Less reports whether v orders strictly before o.
func (v Version) Less(o Version) bool {
	if v.ClusterTime != o.ClusterTime {
		return v.ClusterTime.Before(o.ClusterTime)
	}
	return v.Seq < o.Seq
}

// Value is one column value in PostgreSQL's text input syntax for the
// column's type (numeric as its exact decimal string, timestamptz in ISO 8601
// with a zone, uuid in canonical form, bytea as \x hex, jsonb as JSON text,
// arrays as array literals). Valid=false is SQL NULL. Text never holds a NUL
// byte or invalid UTF-8: transform reports those as errors.
type Value struct {
	Text  string `json:"t,omitempty"`
	Valid bool   `json:"v,omitempty"`
}

// Text returns a non-NULL value.
func Text(s string) Value { return Value{Text: s, Valid: true} }

// Null is SQL NULL.
var Null = Value{}

// Op is what a mutation does to its row.
type Op uint8

const (
	// OpUpsert inserts the row or replaces it (and all its child rows).
	OpUpsert Op = iota + 1
	// OpDelete deletes the row and all its child rows, leaving a tombstone.
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return "unknown"
}

// Mutation is one change to one row of a root (parent) table, with the
// complete replacement of its rows in every descendant table.
type Mutation struct {
	// Table is the root table, "schema.table", as in TableDef.Name.
	Table string `json:"table"`
	Op    Op     `json:"op"`
	// Key holds the primary-key values in TableDef.Key order.
	Key []Value `json:"key"`
	// Values holds every column of the row in TableDef.Columns order (key
	// columns included, hidden version columns excluded). Upserts only.
	Values []Value `json:"values,omitempty"`
	// Identity is the document's _id key text (TYPES.md) when the root
	// table's rows are keyed by it (TableDef.IdentityKey): the key cannot
	// be read from a delete's documentKey, so deletes carry only this and
	// no Key, and the sink finds the row through replicator.row_versions.
	Identity string `json:"identity,omitempty"`
	// Children lists every descendant table of Table, each with its complete
	// new set of rows for this parent (possibly none, which clears it).
	// Upserts only; a delete removes all descendant rows.
	Children []ChildRows `json:"children,omitempty"`
}

// ChildRows is the complete set of rows one parent has in one child (or
// grandchild) table.
type ChildRows struct {
	Table string `json:"table"`
	// Rows each hold every column in that table's TableDef.Columns order,
	// starting with the root key columns (TableDef.RootKey).
	Rows [][]Value `json:"rows"`
}

// TableDef describes one PostgreSQL table a mapping writes.
type TableDef struct {
	// Name is "schema.table".
	Name    string      `json:"name"`
	Columns []ColumnDef `json:"columns"`
	// Key is the primary key, a subset of Columns in key order. For child
	// tables: the root key columns, then the ordinal column(s).
	Key []string `json:"key"`
	// Root is "" for a root table; for a child or grandchild table, the
	// root table's name.
	Root string `json:"root,omitempty"`
	// Parent is the direct parent table ("" for a root table).
	Parent string `json:"parent,omitempty"`
	// RootKey lists, for a descendant table, the columns holding the root
	// row's key (or its RootRef columns), in the root's key order. Deleting
	// a root row deletes descendant rows matching these columns.
	RootKey []string `json:"root_key,omitempty"`
	// RootRef names, for a descendant table whose RootKey columns hold
	// root columns other than the root key (a surrogate id), those root
	// columns; empty means the root key. Their values are unique in the
	// root table.
	RootRef []string `json:"root_ref,omitempty"`
	// ExternalVersions: the root table has no version columns; the sink
	// keeps its rows' versions in replicator.row_versions (versions:
	// table). Root tables only.
	ExternalVersions bool `json:"external_versions,omitempty"`
	// IdentityKey: the key is not read from the documentKey (a natural
	// key of the document), so rows are identified by the document's _id
	// (Mutation.Identity) and the map to their key is kept in
	// replicator.row_versions. Root tables with ExternalVersions only.
	IdentityKey bool `json:"identity_key,omitempty"`
	// ParentLink names, in a grandchild table that references its parent
	// row's own columns (typically the child's surrogate id) instead of
	// holding the root key and the parent ordinal, the columns holding the
	// parent's ParentRef values; RootKey is then empty.
	ParentLink []string `json:"parent_link,omitempty"`
	// ParentRef names the parent table's columns ParentLink holds; their
	// values are unique in the parent table.
	ParentRef []string `json:"parent_ref,omitempty"`
	// Tenant names the column holding the row's tenant ("" without one).
	Tenant string `json:"tenant,omitempty"`
	// TenantSetting is the session variable row-level security reads the
	// tenant from (tenant_id.setting), "" when not configured.
	TenantSetting string `json:"tenant_setting,omitempty"`
}

// ColumnDef is one column: its name and PostgreSQL type as written in DDL
// ("text", "numeric(12,2)", "uuid[]", ...).
type ColumnDef struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	NotNull bool   `json:"not_null,omitempty"`
	// PerDocument: the value is an injective function of the document's
	// _id alone (its _id key text, or a uuid5 of _id), so two documents
	// never share it (root tables only).
	PerDocument bool `json:"per_document,omitempty"`
}
