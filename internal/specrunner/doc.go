// Package specrunner runs MongoDB's unified-format driver specification
// tests (the change-stream files under ../shared/mongodb-spec) against any
// MongoDB the official Go driver can reach: the project's emulator or a real
// replica set. It implements the subset of the unified test format those
// files use and refuses, with an error, whatever it does not implement.
//
// What the package promises:
//
//   - A test is reported as passed only if every operation, result, error and
//     event assertion in it held. Anything the runner cannot evaluate (an
//     unknown operation, argument, entity type or matching operator) fails the
//     test; it is never silently ignored.
//   - A test is skipped only for a reason the format defines (runOnRequirements
//     not met by the server's buildInfo version and hello topology,
//     skipReason) and the reason is reported.
//   - Each test gets a fresh entity map; fail points it configured are turned
//     off and change streams it opened are closed when it ends, whatever the
//     outcome.
//   - Expected values are matched by the format's rules (Match): extra fields
//     are allowed only in root-level documents, numbers compare by value
//     across int32, int64 and double, and the $$ operators are evaluated.
//
// A KnownGaps list (KNOWN_GAPS.md in this directory) names tests that fail on
// the emulator for a recorded missing feature. The list is only ever applied
// to the emulator, and a listed test that passes is itself reported as a
// failure so the list cannot go stale.
package specrunner
