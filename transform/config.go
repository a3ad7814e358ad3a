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
}

// Values of CollectionConfig.OnError and FullDocument.
const (
	OnErrorDeadLetter      = "dead_letter"
	OnErrorHalt            = "halt"
	FullDocumentLookup     = "update_lookup"
	FullDocumentPostImage  = "post_image"
	DocumentIncludeRest    = "rest"
	DocumentIncludeAll     = "all"
	defaultIDColumn        = "_id"
	defaultOrdinalColumn   = "ordinal"
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
	// Ordinal names the column holding the element's 0-based array index
	// (default "ordinal").
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
}
