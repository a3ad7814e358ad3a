package transform

// Transformer turns one change event into the row mutations it causes.
// *Mapping implements it; code-defined collections can too (see Registry).
type Transformer interface {
	Transform(ev *Event) (Result, error)
}

// ResultKind says what a Result holds.
type ResultKind uint8

const (
	// KindRows: Mutations holds the event's row changes.
	KindRows ResultKind = iota + 1
	// KindSkipped: the document matches the collection filter. Count it.
	// For update and replace events Mutations holds a delete of the row,
	// so a document that starts matching the filter leaves the target:
	// apply Mutations exactly as for KindRows.
	KindSkipped
	// KindMissingDocument: an update whose fullDocument is null (the
	// document was deleted before the lookup). Nothing to apply; the
	// delete event that follows removes the row.
	KindMissingDocument
	// KindControl: drop, rename, dropDatabase or invalidate. The pipeline
	// must act on Control (stop the stream, or resync by policy).
	KindControl
)

func (k ResultKind) String() string {
	switch k {
	case KindRows:
		return "rows"
	case KindSkipped:
		return "skipped"
	case KindMissingDocument:
		return "missing_document"
	case KindControl:
		return "control"
	}
	return "unknown"
}

// ControlKind is the control event a KindControl result reports.
type ControlKind uint8

const (
	ControlNone ControlKind = iota
	ControlDrop
	ControlRename
	ControlDropDatabase
	ControlInvalidate
)

func (c ControlKind) String() string {
	switch c {
	case ControlDrop:
		return OpDrop
	case ControlRename:
		return OpRename
	case ControlDropDatabase:
		return OpDropDatabase
	case ControlInvalidate:
		return OpInvalidate
	}
	return "none"
}

// MarshalText spells the kind in logs and JSON.
func (k ResultKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText spells the control kind in logs and JSON.
func (c ControlKind) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Result is what one event becomes.
type Result struct {
	Kind      ResultKind
	Mutations []Mutation
	Control   ControlKind
	// Namespace is the event's "db.coll" ("db." for dropDatabase).
	Namespace string
	// RenameTo is a rename's target namespace.
	RenameTo string
}

// controlResult returns the KindControl result of a control event, or
// false for other operations.
func controlResult(ev *Event) (Result, bool) {
	var c ControlKind
	switch ev.OperationType {
	case OpDrop:
		c = ControlDrop
	case OpRename:
		c = ControlRename
	case OpDropDatabase:
		c = ControlDropDatabase
	case OpInvalidate:
		c = ControlInvalidate
	default:
		return Result{}, false
	}
	r := Result{Kind: KindControl, Control: c, Namespace: ev.Namespace()}
	if c == ControlRename {
		r.RenameTo = ev.ToDB + "." + ev.ToColl
	}
	return r, true
}
