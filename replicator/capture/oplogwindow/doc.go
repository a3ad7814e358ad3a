// Package oplogwindow watches how much oplog remains behind the capture
// position: the oplog headroom, the capture position's cluster time minus
// the oldest entry still in the source's oplog (local.oplog.rs, first in
// natural order). When the headroom reaches zero the position has fallen
// off the oplog and only a resync recovers (ChangeStreamHistoryLost).
//
// Promises:
//   - The gauge replicator_capture_oplog_headroom_seconds reads the last
//     measured headroom; it is only set from a successful measurement
//     (guard.go, Check), so a failing source never shows a fresh value.
//   - A warning is logged when the headroom falls below Config.Warning
//     (source.oplog_headroom_warning, default 24h) or below the running
//     snapshot's estimated remaining time, once when it happens and then at
//     most every Config.Repeat while it lasts, and once more when it clears.
//   - Run polls every Config.Interval until ctx ends; a failed poll is
//     logged and retried at the next tick, never fatal: the guard only
//     observes.
package oplogwindow
