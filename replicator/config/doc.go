// Package config reads the replicator's one YAML file: the only place that
// reads files and the environment for configuration.
//
// Promises:
//   - The file format is the user-facing contract shown in ARCHITECTURE.md; a file
//     written like its example keeps working.
//   - Every problem is reported at once (a Problems error), each with its
//     file:line:col and the YAML key at fault: unknown keys anywhere,
//     values of the wrong type, invalid values, collection mappings that do
//     not compile, duplicate sources and duplicate tables.
//   - Defaults are applied before validation and documented on each field;
//     a zero numeric value means "use the default".
//   - Secrets may come from the environment: REPLICATOR_SOURCE_URI and
//     REPLICATOR_TARGET_URL override source.uri and target.url (Load only).
package config
