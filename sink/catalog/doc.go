// Package catalog compares the tables a mapping writes with the live
// PostgreSQL catalog and with what the connecting role may do there, so a
// problem is found before the first write instead of as a failed batch:
// `replicator check` is its pre-flight.
//
// Promise: Compare reports every problem at once, each with its fix, and
// only reads the catalog. Errors are what will make writes fail
// (compare.go, keys.go, rls.go, privileges.go): missing tables and
// columns, types that cannot hold the mapped values, NOT NULL columns the
// mapping may leave NULL or never writes, generated and GENERATED ALWAYS
// identity columns the mapping writes, missing hidden version columns, a
// key that no unique index serves as the arbiter of INSERT ... ON CONFLICT
// (the primary key, a UNIQUE constraint or a unique index on exactly the
// key columns, in any order; not partial, deferrable or invalid),
// row-level security the role does not bypass without tenant_id.setting or
// without a policy allowing the sink's statements, and missing privileges
// (on the tables, their schemas and serial sequences, TEMP on the
// database, the metadata schema: creating it, migrating it, using its
// tables). Warnings are what may dead-letter rows or change them
// (constraints.go, keys.go, triggers.go): other unique constraints, CHECK
// constraints, foreign keys to rows the mapping may not have written or
// onto rows the sink deletes, user triggers, a descendant table without an
// index on its parent columns, a tenant setting no policy reads.
package catalog
