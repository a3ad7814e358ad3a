package transform

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// CollectionConfig is one entry of `collections:` in the YAML file: how one
// MongoDB collection maps to one root table and its child tables.
type CollectionConfig struct {
	// Source is "database.collection" in MongoDB.
	Source string `yaml:"source"`
	// Table is "schema.table" in PostgreSQL ("table" alone means public).
	Table string `yaml:"table"`
	// Key lists the primary-key columns; their values come from the event's
	// documentKey, so their paths must be _id (or its sub-fields) or shard
	// key fields. Default: the column mapped from path _id.
	Key []string `yaml:"key,omitempty"`
	// IDColumn names the column added for _id when no column maps path _id
	// (default "_id"; its type is text and it holds the _id key text of
	// TYPES.md, as does any text column mapped from _id).
	IDColumn string `yaml:"id_column,omitempty"`
	// Columns maps column names to document paths, in file order.
	Columns Columns `yaml:"columns,omitempty"`
	// Document keeps the whole document or the unmapped rest as JSONB.
	Document *DocumentConfig `yaml:"document,omitempty"`
	// Children map array fields to child tables.
	Children []ChildConfig `yaml:"children,omitempty"`
	// Filter lists conditions; a document matching any of them is skipped
	// (and removed from the target if it was there).
	Filter []FilterCondition `yaml:"filter,omitempty"`
	// TenantID adds the tenant column to the root and every child table.
	TenantID *TenantConfig `yaml:"tenant_id,omitempty"`
	// OnError is dead_letter (default) or halt.
	OnError string `yaml:"on_error,omitempty"`
	// DeadLetterThreshold halts the collection after this many dead
	// letters; 0 never halts.
	DeadLetterThreshold int `yaml:"dead_letter_threshold,omitempty"`
	// FullDocument is update_lookup (default) or post_image (the change
	// stream then asks for fullDocument=required).
	FullDocument string `yaml:"full_document,omitempty"`
	// UUIDRepresentation is the byte order of binary subtype 3 UUIDs:
	// standard (default), java_legacy, csharp_legacy or python_legacy.
	UUIDRepresentation string `yaml:"uuid_representation,omitempty"`
	// Versions says where each root row's source version is kept:
	// columns (default: the hidden _cdc_ts, _cdc_inc and _cdc_seq columns
	// of the root table) or table (replicator.row_versions, so the target
	// tables are exactly as the application's DDL says).
	Versions string `yaml:"versions,omitempty"`
	// UUID5Namespace is the namespace UUID of this collection's derived
	// (uuid5) columns that do not name their own (default
	// DefaultUUID5Namespace).
	UUID5Namespace string `yaml:"uuid5_namespace,omitempty"`
	// Partitions splits the collection's buffered changes across this many
	// subjects by a hash of the document's _id, each with its own apply
	// consumer and checkpoint, so that several apply processes share the
	// collection while each document's changes stay in order (0 or 1: one
	// subject; at most MaxPartitions). Changing it needs the procedure of
	// the README (Scaling out).
	Partitions int `yaml:"partitions,omitempty"`
}

// MaxPartitions bounds CollectionConfig.Partitions.
const MaxPartitions = 256

// Values of CollectionConfig.OnError and FullDocument.
const (
	OnErrorDeadLetter     = "dead_letter"
	OnErrorHalt           = "halt"
	VersionsColumns       = "columns"
	VersionsTable         = "table"
	FullDocumentLookup    = "update_lookup"
	FullDocumentPostImage = "post_image"
	DocumentIncludeRest   = "rest"
	DocumentIncludeAll    = "all"
	defaultIDColumn       = "_id"
	defaultOrdinalColumn  = "ordinal"
	// OrdinalNone as ChildConfig.Ordinal leaves the ordinal column out.
	OrdinalNone            = "none"
	defaultTenantColumn    = "tenant_id"
	defaultParentOrdPrefix = "parent_"
)

// ColumnConfig maps one column.
type ColumnConfig struct {
	// Path is a dotted path into the document; a numeric segment indexes
	// an array. In a child table, "." is the array element itself.
	Path string `yaml:"path"`
	// Type is the PostgreSQL type (see TYPES.md).
	Type string `yaml:"type"`
	// Required makes a missing or null value a transform error.
	Required bool `yaml:"required,omitempty"`
	// Default, in PostgreSQL text syntax, replaces a missing or null value.
	Default *string `yaml:"default,omitempty"`
	// UUID5 derives the column (type uuid) as a name-based UUID version 5
	// from other values instead of reading it at Path (derive.go).
	UUID5 *UUID5Config `yaml:"uuid5,omitempty"`
	// Map replaces each source value (a string, integer or boolean, keyed
	// by its text) with the value written; a value the map lacks is an
	// error naming the field (valuemap.go).
	Map map[string]any `yaml:"map,omitempty"`
}

// UUID5Config derives a column as a UUID version 5 (RFC 9562): SHA-1 of
// the namespace UUID and a name, where the name is the JSON array
// [scope, part, ...] as PostgreSQL prints it as jsonb text. The same
// source therefore gives the same id in every database and on every
// re-run. See README, "Replicating into an existing schema".
type UUID5Config struct {
	// From lists the parts: document paths (in a child table, paths in the
	// element) whose values enter as their _id key text (TYPES.md), and in
	// a child table "$parent" (the values of its parent_key columns) and
	// "$ordinal" (the element's index).
	From []string `yaml:"from"`
	// Scope is the first name part (default: the column's table,
	// "schema.table"). Two columns with the same scope, namespace and part
	// values get the same id: a column referencing another table's
	// derived id names that table as its scope.
	Scope string `yaml:"scope,omitempty"`
	// Namespace is the namespace UUID (default: the collection's
	// uuid5_namespace).
	Namespace string `yaml:"namespace,omitempty"`
}

// Column is a named ColumnConfig.
type Column struct {
	Name string
	ColumnConfig
}

// Columns keeps the file order of a `columns:` mapping, which is the
// column order in tables and mutations.
type Columns []Column

// UnmarshalYAML reads a mapping of column name to ColumnConfig.
func (c *Columns) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: columns must be a mapping of column name to {path, type}", n.Line)
	}
	out := make(Columns, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		var col Column
		if err := n.Content[i].Decode(&col.Name); err != nil {
			return err
		}
		if err := n.Content[i+1].Decode(&col.ColumnConfig); err != nil {
			return err
		}
		out = append(out, col)
	}
	*c = out
	return nil
}

// MarshalYAML writes the mapping back in order.
func (c Columns) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, col := range c {
		var v yaml.Node
		if err := v.Encode(col.ColumnConfig); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: col.Name}, &v)
	}
	return n, nil
}

// DocumentConfig keeps document data in one JSONB column.
type DocumentConfig struct {
	Column string `yaml:"column"`
	// Include is rest (fields no column or child consumed) or all.
	Include string `yaml:"include,omitempty"`
}

// ChildConfig maps an array field to a child table, one row per element.
type ChildConfig struct {
	// Path is the array's path in the parent (root document or, for a
	// grandchild, the child's element).
	Path  string `yaml:"path"`
	Table string `yaml:"table"`
	// ParentKey names the column holding the root key when the root key
	// has one column (default: the root key column's name; in a grandchild,
	// the name its parent table uses). With a composite root key, the root
	// key column names are used.
	ParentKey string `yaml:"parent_key,omitempty"`
	// References names the root column parent_key holds when that is not
	// the root key, typically a surrogate id (a uuid5 column) while the
	// key is a natural key. Its values must be unique in the root table.
	// In a grandchild it names a column of the parent (child) table, its
	// own id: the grandchild then holds neither the root key nor the
	// parent ordinal. parent_key is then required.
	References string `yaml:"references,omitempty"`
	// Key lists the child table's own key columns (default: the root key
	// columns, the parent ordinal in a grandchild, and the ordinal), for
	// tables whose primary key is their own id, typically a uuid5 column
	// derived from $parent and $ordinal or a natural key of the element.
	Key []string `yaml:"key,omitempty"`
	// Ordinal names the column holding the element's 0-based array index
	// (default "ordinal"); "none" leaves it out, for a table that has no
	// such column (its key must then be given, and it has no grandchildren).
	Ordinal string `yaml:"ordinal,omitempty"`
	// ParentOrdinal names, in a grandchild table, the column holding the
	// parent element's ordinal (default "parent_" + the parent's ordinal
	// column, e.g. "parent_ordinal").
	ParentOrdinal string  `yaml:"parent_ordinal,omitempty"`
	Columns       Columns `yaml:"columns,omitempty"`
	// Document keeps the element (all) or its fields no column or
	// grandchild consumed (rest) in one JSONB column, the last column.
	Document *DocumentConfig `yaml:"document,omitempty"`
	// Children are grandchild tables (one level only).
	Children []ChildConfig `yaml:"children,omitempty"`
}

// FilterCondition matches a document. Set exactly one of Equals, In,
// Exists or IsNull.
type FilterCondition struct {
	Path string `yaml:"path"`
	// Equals matches a string, number or boolean field equal to the value.
	Equals any `yaml:"equals,omitempty"`
	// In matches a field equal to any of the values.
	In []any `yaml:"in,omitempty"`
	// Exists matches when the field's presence equals the value.
	Exists *bool `yaml:"exists,omitempty"`
	// IsNull, when true, matches a field that is null or missing. (Not
	// spelled "null": YAML reads an unquoted null key as no key at all.)
	IsNull bool `yaml:"is_null,omitempty"`
}

// TenantConfig says where every row's tenant comes from: a document field
// (Path), a constant (Value), or, when Column names an already mapped root
// column, that column. The tenant column is added to every child table.
type TenantConfig struct {
	// Column is the column name (default "tenant_id").
	Column string `yaml:"column,omitempty"`
	Path   string `yaml:"path,omitempty"`
	Value  string `yaml:"value,omitempty"`
	// Type is the column type (default text) when the column is added here.
	Type string `yaml:"type,omitempty"`
	// Optional allows a missing tenant (NULL); by default it is an error.
	Optional bool `yaml:"optional,omitempty"`
	// Setting names the session variable row-level security policies read
	// the tenant from (for example app.tenant_id). The sink then writes
	// each tenant's rows with the variable set to that tenant, inside its
	// transaction, so a role without BYPASSRLS can write tables with FORCE
	// ROW LEVEL SECURITY.
	Setting string `yaml:"setting,omitempty"`
}
