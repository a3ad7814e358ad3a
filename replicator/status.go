package replicator

import (
	"time"

	"github.com/mongopg/replicator/checkpoints"
	"github.com/mongopg/replicator/transform"
)

// Status is the state of one replicator as `replicator status --format
// json` prints it and /status serves it: one JSON document whose field
// names are stable (README, Operations: Status). Times are RFC 3339 in
// UTC; durations are seconds, as numbers; a value that is not known is
// null.
type Status struct {
	// Version is the build that produced the document.
	Version BuildInfo `json:"version"`
	// Time is when the document was gathered.
	Time time.Time `json:"time"`
	// Healthy is false when Problems is not empty (Assess).
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
	// Process is the running process's own view; /status only.
	Process     *ProcessStatus     `json:"process,omitempty"`
	Capture     CaptureStatus      `json:"capture"`
	Holds       []HoldStatus       `json:"holds"`
	Buffer      BufferStatus       `json:"buffer"`
	Target      TargetStatus       `json:"target"`
	Collections []CollectionStatus `json:"collections"`
}

// ProcessStatus is what a running process knows of itself.
type ProcessStatus struct {
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Live is /healthz: no component stopped with an error.
	Live bool `json:"live"`
	// Ready is /readyz; NotReady lists the failing checks.
	Ready    bool     `json:"ready"`
	NotReady []string `json:"not_ready"`
}

// CaptureStatus is capture's saved position for one source.
type CaptureStatus struct {
	Source string `json:"source"`
	// Position is null when none is saved (capture never ran) or the
	// buffer could not be read (Error).
	Position *PositionStatus `json:"position"`
	Error    string          `json:"error,omitempty"`
}

// PositionStatus is a capture position: capture resumes after Token.
type PositionStatus struct {
	ClusterTime transform.ClusterTime `json:"cluster_time"`
	// Time is ClusterTime's seconds as a time; LagSeconds is now − Time.
	Time       time.Time `json:"time"`
	LagSeconds float64   `json:"lag_seconds"`
	Token      string    `json:"token"`
	// SavedAt is when capture saved it; AgeSeconds is now − SavedAt.
	SavedAt    time.Time `json:"saved_at"`
	AgeSeconds float64   `json:"age_seconds"`
}

// HoldStatus is a collection whose capture is held (buffer.Hold).
type HoldStatus struct {
	Collection  string                `json:"collection"`
	Reason      string                `json:"reason"`
	Recovery    string                `json:"recovery"`
	ClusterTime transform.ClusterTime `json:"cluster_time"`
	Since       time.Time             `json:"since"`
	// Released is true once a resync released the hold: capture publishes
	// the collection's events after ReleasedAt again.
	Released         bool                   `json:"released"`
	ReleasedAt       *transform.ClusterTime `json:"released_at"`
	ReleaseRequested bool                   `json:"release_requested"`
}

// BufferStatus is the buffer's stream.
type BufferStatus struct {
	// URL never holds credentials.
	URL       string `json:"url"`
	Stream    string `json:"stream"`
	Reachable bool   `json:"reachable"`
	Messages  uint64 `json:"messages"`
	Bytes     uint64 `json:"bytes"`
	FirstSeq  uint64 `json:"first_seq"`
	LastSeq   uint64 `json:"last_seq"`
	Error     string `json:"error,omitempty"`
}

// TargetStatus is the PostgreSQL target, read for the apply checkpoints.
type TargetStatus struct {
	// Configured is false when there is no target.url (or, in /status,
	// when the process does not use the target).
	Configured bool   `json:"configured"`
	Reachable  bool   `json:"reachable"`
	Error      string `json:"error,omitempty"`
}

// CollectionStatus is one configured collection.
type CollectionStatus struct {
	Collection string `json:"collection"`
	// Held is true while capture holds it and the hold is not released.
	Held bool `json:"held"`
	// Pending is the messages the collection's applier has still to
	// commit (undelivered plus unacknowledged); null when its consumer
	// does not exist yet.
	Pending *uint64 `json:"pending"`
	// The apply checkpoint's fields (CheckpointStatus); null when the
	// collection has none.
	AppliedSeq          *uint64                `json:"applied_seq"`
	ClusterTime         *transform.ClusterTime `json:"cluster_time"`
	SourceTime          *time.Time             `json:"source_time"`
	LagSeconds          *float64               `json:"lag_seconds"`
	CommittedAt         *time.Time             `json:"committed_at"`
	CommittedAgeSeconds *float64               `json:"committed_age_seconds"`
}

// CheckpointStatus is one apply checkpoint, as `checkpoints list --format
// json` prints it.
type CheckpointStatus struct {
	Collection string `json:"collection"`
	// AppliedSeq is the last applied buffer sequence.
	AppliedSeq uint64 `json:"applied_seq"`
	// ClusterTime, SourceTime and LagSeconds are null when the source
	// time is unknown (after `checkpoints set`).
	ClusterTime         *transform.ClusterTime `json:"cluster_time"`
	SourceTime          *time.Time             `json:"source_time"`
	LagSeconds          *float64               `json:"lag_seconds"`
	CommittedAt         time.Time              `json:"committed_at"`
	CommittedAgeSeconds float64                `json:"committed_age_seconds"`
	Epoch               int64                  `json:"epoch"`
}

// NewCheckpointStatus describes c at now.
func NewCheckpointStatus(c checkpoints.Checkpoint, now time.Time) CheckpointStatus {
	s := CheckpointStatus{
		Collection:          c.Collection,
		AppliedSeq:          c.Seq,
		CommittedAt:         c.UpdatedAt.UTC(),
		CommittedAgeSeconds: seconds(now.Sub(c.UpdatedAt)),
		Epoch:               c.Epoch,
	}
	if !c.ClusterTime.IsZero() {
		ct := c.ClusterTime
		s.ClusterTime = &ct
	}
	if !c.WallTime.IsZero() {
		src, lag := c.WallTime.UTC(), seconds(c.Lag(now))
		s.SourceTime, s.LagSeconds = &src, &lag
	}
	return s
}

// seconds is d in seconds, to the millisecond.
func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }
