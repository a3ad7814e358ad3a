package verify

// Report is the result of verifying one collection. Its JSON form is part
// of `replicator verify --format json` (README, Verifying before a
// cutover): keep field names stable.
type Report struct {
	Collection string `json:"collection"`
	// Equal: every table equal, no transform errors, no dead-lettered
	// documents.
	Equal bool `json:"equal"`
	// Documents is the number of documents read; Skipped of them the
	// filter skips.
	Documents int64 `json:"documents"`
	Skipped   int64 `json:"skipped"`
	// TransformErrors are documents that fail to transform and have no
	// unresolved dead letter (the first MaxDifferences).
	TransformErrors DocumentList `json:"transform_errors"`
	// DeadLettered are documents with unresolved dead letters (the first
	// MaxDifferences).
	DeadLettered DocumentList  `json:"dead_lettered"`
	Tables       []TableReport `json:"tables"`
	// Rechecks is how many times the tables were compared again after the
	// applier had caught up past the reads (0 when the first comparison
	// was equal, or no re-check was possible: see Note).
	Rechecks int `json:"rechecks"`
	// InFlight are the root keys whose documents changed around their read
	// in every re-check: their rows are neither equal nor different, and
	// are left out of the tables' counts and differences.
	InFlight KeyList `json:"in_flight"`
	// Note says why differences were not re-checked, when they could not
	// be.
	Note string `json:"note,omitempty"`
	// Sample is set when only a sample was compared (Config.Sample): the
	// counts are the sampled documents' rows.
	Sample *SampleReport `json:"sample,omitempty"`
	// Repair is what Config.Repair did (absent without it, or when
	// nothing differed).
	Repair *RepairReport `json:"repair,omitempty"`
}

// KeyList is a count of root keys with the first of them.
type KeyList struct {
	Count int64       `json:"count"`
	Keys  []KeyReport `json:"keys"`
}

// KeyReport is one root key: its columns' values and, when it was read,
// its document ({_id: …} as canonical Extended JSON).
type KeyReport struct {
	DocumentKey string     `json:"document_key,omitempty"`
	Key         []KeyValue `json:"key"`
}

// DocumentList is a count of documents with the first of them.
type DocumentList struct {
	Count     int64            `json:"count"`
	Documents []DocumentReport `json:"documents"`
}

// DocumentReport names one document.
type DocumentReport struct {
	// DocumentKey is {_id: …} as canonical Extended JSON.
	DocumentKey string `json:"document_key"`
	Error       string `json:"error,omitempty"`
	// DeadLetters are the ids of the document's unresolved dead letters.
	DeadLetters []int64 `json:"dead_letters,omitempty"`
}

// TableReport compares one table.
type TableReport struct {
	Table string `json:"table"`
	// Key lists the columns rows are matched by.
	Key          []string `json:"key"`
	ExpectedRows int64    `json:"expected_rows"`
	ActualRows   int64    `json:"actual_rows"`
	// Checksums are independent of row order: the md5 of the row count and
	// of the sums of two 64-bit hashes of every row (hash_record_extended
	// of the mapped columns cast to their compared types), so equal values
	// in another form (numeric 1.50 and 1.5, jsonb key order) give the
	// same checksum.
	ExpectedChecksum string `json:"expected_checksum"`
	ActualChecksum   string `json:"actual_checksum"`
	// TenantColumn and Tenants are set when the table has a tenant column.
	TenantColumn string         `json:"tenant_column,omitempty"`
	Tenants      []TenantCounts `json:"tenants,omitempty"`
	Differences  Differences    `json:"differences"`
}

// TenantCounts are one tenant's rows on both sides.
type TenantCounts struct {
	Tenant       *string `json:"tenant"` // null for rows without one
	ExpectedRows int64   `json:"expected_rows"`
	ActualRows   int64   `json:"actual_rows"`
}

// Differences are a table's differing rows: the counts of all of them and
// the first Config.MaxDifferences in key order.
type Differences struct {
	Total     int64        `json:"total"`
	Missing   int64        `json:"missing"`
	Extra     int64        `json:"extra"`
	Different int64        `json:"different"`
	Rows      []Difference `json:"rows"`
}

// Kinds of Difference.
const (
	// Missing: expected, not in PostgreSQL.
	Missing = "missing"
	// Extra: in PostgreSQL, not expected.
	Extra = "extra"
	// Different: both sides have the key, some column differs.
	Different = "different"
)

// Difference is one differing row.
type Difference struct {
	Kind string `json:"kind"`
	// Key holds the row's key columns' values as PostgreSQL prints them.
	Key []KeyValue `json:"key"`
	// Columns are the differing columns (Different only).
	Columns []ColumnDifference `json:"columns,omitempty"`
}

// KeyValue is one key column's value.
type KeyValue struct {
	Column string  `json:"column"`
	Value  *string `json:"value"`
}

// ColumnDifference is one column whose values differ; nil is NULL.
type ColumnDifference struct {
	Column   string  `json:"column"`
	Expected *string `json:"expected"`
	Actual   *string `json:"actual"`
}

// tablesEqual reports whether every table's two sides are equal.
func (r *Report) tablesEqual() bool {
	for i := range r.Tables {
		if !r.Tables[i].equal() {
			return false
		}
	}
	return true
}

// equal reports whether the table's two sides are equal.
func (t *TableReport) equal() bool {
	return t.Differences.Total == 0
}
