package main

import (
	"time"

	"github.com/mongopg/replicator/replicator"
	"github.com/mongopg/replicator/replicator/verify"
	"github.com/mongopg/replicator/transform"
)

// cutoverDoc is the report of `replicator cutover`: the JSON file, the
// document --format json prints, and the source of the Markdown file
// (README, Cutover). Keep field names stable; the verify reports are
// verify.Report values as `replicator verify` prints them.
type cutoverDoc struct {
	// Verdict is PASS when every collection drained, every verify report
	// is equal and no dead letter is unresolved; Problems say why not.
	Verdict     string               `json:"verdict"`
	Pass        bool                 `json:"pass"`
	Problems    []string             `json:"problems"`
	StartedAt   time.Time            `json:"started_at"`
	FinishedAt  time.Time            `json:"finished_at"`
	Version     replicator.BuildInfo `json:"version"`
	Config      string               `json:"config"`
	Module      string               `json:"module,omitempty"`
	Selected    []string             `json:"selected"`
	Drain       cutoverDrain         `json:"drain"`
	Capture     cutoverCapture       `json:"capture"`
	Collections []cutoverCollection  `json:"collections"`
	Files       cutoverFiles         `json:"files"`
}

// cutoverDrain is step 1: the wait for the apply to reach the source
// cluster time read when the cutover started.
type cutoverDrain struct {
	// The last state read: the target, capture's position, and per
	// collection its checkpoint, pending messages and what it waited for.
	replicator.DrainState
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	TimeoutSeconds float64   `json:"timeout_seconds"`
	// Error says why the drain did not complete, naming each collection.
	Error string `json:"error,omitempty"`
}

// cutoverCapture is step 2: where capture stands once the drain is over.
type cutoverCapture struct {
	Source string `json:"source"`
	// Position is capture's saved position (the resume token and its
	// cluster time, as `status` shows it); null when none is saved.
	Position *replicator.PositionStatus `json:"position"`
	// SourceClusterTime is the source's majority cluster time, read right
	// after Position; SourceTime its seconds as a time.
	SourceClusterTime *transform.ClusterTime `json:"source_cluster_time"`
	SourceTime        *time.Time             `json:"source_time"`
	RecordedAt        time.Time              `json:"recorded_at"`
	Error             string                 `json:"error,omitempty"`
}

// cutoverCollection is steps 3 and 4 for one collection.
type cutoverCollection struct {
	Collection string `json:"collection"`
	Drained    bool   `json:"drained"`
	// Verify is the comparison of MongoDB with PostgreSQL; null when it
	// did not run (VerifySkipped or VerifyError says why).
	Verify        *verify.Report     `json:"verify"`
	VerifySkipped string             `json:"verify_skipped,omitempty"`
	VerifyError   string             `json:"verify_error,omitempty"`
	DeadLetters   cutoverDeadLetters `json:"dead_letters"`
}

// cutoverDeadLetters are a collection's unresolved dead letters: all of
// them counted, the first few listed (dlq list has the rest).
type cutoverDeadLetters struct {
	Unresolved int64            `json:"unresolved"`
	First      []deadLetterJSON `json:"first"`
	Error      string           `json:"error,omitempty"`
}

// cutoverFiles are the report files written.
type cutoverFiles struct {
	Markdown string `json:"markdown"`
	JSON     string `json:"json"`
}
