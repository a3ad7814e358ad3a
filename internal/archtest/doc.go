// Package archtest checks the structure of the repository. It has no code
// of its own, only tests.
//
// layers_test.go keeps the layer table of docs/ARCHITECTURE.md and fails
// when a non-test file imports a module package against it: an import that
// does not point to a strictly lower layer, a product package that imports
// internal/, or a package the table does not place. It reads import
// clauses with go/parser, so it needs neither the network nor a build.
package archtest
