package transform

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MongoDB's limits on namespaces ("database.collection").
const (
	maxDatabaseName = 63
	maxNamespace    = 255
	// badDatabaseBytes are the bytes MongoDB refuses in a database name
	// (besides NUL).
	badDatabaseBytes = `/\. "$*<>:|?`
)

// CheckNamespace returns the first reason ns is not a namespace MongoDB
// accepts and the replicator can carry, or nil. A namespace is
// "database.collection", split at the first dot:
//
//   - the whole namespace is valid UTF-8 without control characters (so
//     it can never end a line, a comment or a string it is written into)
//     and at most 255 bytes;
//   - the database is non-empty, at most 63 bytes, without any of
//     / \ . " $ * < > : | ? or a space;
//   - the collection is non-empty, does not start with a dot or
//     "system." (MongoDB's own collections), and has no "$".
//
// Spaces, "*", ">", "~" and dots are allowed in collection names, as in
// MongoDB: envelope.Subject encodes them.
func CheckNamespace(ns string) error {
	if !utf8.ValidString(ns) {
		return fmt.Errorf("source %q is not valid UTF-8", ns)
	}
	if i := strings.IndexFunc(ns, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(ns[i:])
		return fmt.Errorf("source %q contains the control character %U", ns, r)
	}
	db, coll, ok := strings.Cut(ns, ".")
	if !ok || db == "" || coll == "" {
		return fmt.Errorf("source %q must be database.collection", ns)
	}
	switch {
	case len(ns) > maxNamespace:
		return fmt.Errorf("source %q is %d bytes, MongoDB allows at most %d", ns, len(ns), maxNamespace)
	case len(db) > maxDatabaseName:
		return fmt.Errorf("database name %q is %d bytes, MongoDB allows at most %d", db, len(db), maxDatabaseName)
	case strings.ContainsAny(db, badDatabaseBytes):
		i := strings.IndexAny(db, badDatabaseBytes)
		return fmt.Errorf("database name %q contains %q, which MongoDB does not allow in database names (none of %s)", db, db[i], badDatabaseBytes)
	case strings.HasPrefix(coll, "."):
		return fmt.Errorf("collection name %q starts with a dot", coll)
	case strings.HasPrefix(coll, "system."):
		return fmt.Errorf("collection %q is a MongoDB system collection, which cannot be replicated", coll)
	case strings.Contains(coll, "$"):
		return fmt.Errorf("collection name %q contains $, which MongoDB does not allow", coll)
	}
	return nil
}
