// Package transform turns MongoDB change events into the row mutations
// PostgreSQL needs, by a declarative per-collection mapping (the
// `collections:` section of the YAML file, CollectionConfig).
//
// Promises (ARCHITECTURE.md, guarantees 6 and 7):
//
//   - Pure: no I/O, no clocks, no randomness. The same event and mapping
//     always give byte-identical mutations (TestTransformEvents runs every
//     golden case twice; FuzzTransform checks it on arbitrary documents).
//   - Lossless or explicit: every BSON value becomes PostgreSQL text input
//     by the one table below (TYPES.md has every cell, each tested against
//     a real PostgreSQL in TestTypeTablePostgres). A value the column cannot
//     hold exactly — a NUL character, invalid UTF-8, an integer out of
//     range, a fraction numeric(p,s) would round, a date outside
//     PostgreSQL's range or with a time of day for a date column — is an
//     *Error naming the collection, the document key and the field path,
//     never a silent change.
//   - Never panics on arbitrary bytes: BSON is walked directly with bounds
//     checks (bsonraw.go) and fuzzed (FuzzConvert, FuzzPath, FuzzTransform).
//   - Nothing is dropped by omission: `document: {include: rest}` keeps
//     every field no column or child table consumed; a child table can
//     keep its elements' unmapped fields the same way.
//   - Control events (drop, rename, dropDatabase, invalidate) are a
//     KindControl Result, never an error or a skip; an update whose
//     document is gone is KindMissingDocument, not a bogus row.
//
// # Rows
//
// A Mutation holds one root-table row (columns in TableDef order: mapped
// columns in file order, an added tenant column, then the document column;
// key values come from the event's documentKey) and the complete rows of
// every child table. A child table row is: the root key columns (named by
// parent_key for a one-column key, else the root key names), for a
// grandchild the parent element's ordinal (parent_ordinal, default
// "parent_ordinal"), the element's 0-based array index (ordinal, default
// "ordinal"), the tenant column if configured, the element columns ("."
// is the element itself), then the element's JSONB column if the child
// has `document:`. Its primary key is root key + ordinal(s).
// Root tables also carry the hidden version columns of mutation.go, which
// DDL declares and the sink fills.
//
// # Types
//
// BSON → PostgreSQL text (see TYPES.md for each cell and its limits):
//
//	BSON            column types accepting it          text written
//	ObjectId        text, jsonb                        24 hex digits; {"$oid":…}
//	string          text, varchar(n), uuid, jsonb,     as is (uuid: canonical form;
//	                inet, cidr, macaddr, macaddr8      network types: validated, canonical)
//	int32, int64    smallint…bigint, numeric, real,    decimal, range-checked; exact
//	                double precision, text, jsonb      only (real ≤ 2^24, double ≤ 2^53)
//	double          double precision, numeric, real,   shortest round-trip decimal,
//	                integer types (integral), text,    NaN/Infinity/-Infinity; real only
//	                jsonb                              if exact
//	Decimal128      numeric, integer types (integral), exact plain decimal keeping scale,
//	                text, jsonb                        NaN, ±Infinity (numeric only)
//	boolean         boolean, text, jsonb               true / false
//	date            timestamptz, timestamp, date,      ISO 8601 with milliseconds, Z;
//	                text, jsonb                        BC suffix before year 1
//	timestamp       timestamptz (seconds), jsonb       {"$timestamp":…} in JSON
//	null, undefined, missing → NULL in every column (an error if required)
//	binary 4 (3)    uuid, text, bytea, jsonb           canonical UUID (legacy byte
//	                                                   order per uuid_representation)
//	other binary    bytea, jsonb                       \x hex
//	regex, code, symbol, MinKey, MaxKey, DBRef, DBPointer, code with scope:
//	                jsonb, text                        Extended JSON (symbol: the string)
//	document        jsonb, text                        JSON object, keys in order
//	array           T[] (one dimension), jsonb, text   array literal, all quoted, NULLs
//
// The implicit _id column and every text or varchar(n) column mapped from
// path _id write the _id key text instead (idtext.go): ObjectIds as hex,
// strings as they are unless they are 24 lowercase hex digits or start
// with "~" ("~str:" then), every other type tagged ("~num:1", "~date:…"),
// numbers by exact value. It is injective, so _ids of different BSON types
// never share a row, and deletes use it on the documentKey just as
// upserts, snapshot rows and child parent keys do.
//
// JSONB text is MongoDB relaxed Extended JSON v2 (json.go): int32/int64 as
// plain integers (exact: jsonb numbers are numeric), finite doubles as
// numbers, NaN/±Infinity, Decimal128, dates, ObjectIds and binaries in
// their $-wrappers, keys in document order, no HTML escaping.
package transform
