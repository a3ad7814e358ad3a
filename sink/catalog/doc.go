// Package catalog compares the tables a mapping writes with the live
// PostgreSQL catalog, so a schema problem is found before the first write
// instead of as a failed batch.
//
// Promise: Compare reports every difference at once (missing tables and
// columns, types that cannot hold the mapped values, missing or different
// primary keys, missing hidden version columns, NOT NULL columns the
// mapping may leave NULL or never writes). It only reads the catalog.
package catalog
