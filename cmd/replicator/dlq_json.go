package main

import (
	"time"

	"github.com/mongopg/replicator/sink"
)

// deadLettersDoc is the document of `dlq list --format json`.
type deadLettersDoc struct {
	DeadLetters []deadLetterJSON `json:"dead_letters"`
}

// deadLetterJSON is one dead letter without its raw event (`dlq show ID`
// prints that). Empty strings are unknown values; ResolvedAt is null
// while unresolved.
type deadLetterJSON struct {
	ID          int64      `json:"id"`
	Collection  string     `json:"collection"`
	Stage       string     `json:"stage"`
	Reason      string     `json:"reason"`
	Error       string     `json:"error"`
	FieldPath   string     `json:"field_path"`
	SQLState    string     `json:"sqlstate"`
	DocumentKey string     `json:"document_key"`
	Seq         uint64     `json:"seq"`
	CreatedAt   time.Time  `json:"created_at"`
	ResolvedAt  *time.Time `json:"resolved_at"`
	Note        string     `json:"note"`
}

func newDeadLettersDoc(dls []sink.DeadLetter) deadLettersDoc {
	doc := deadLettersDoc{DeadLetters: make([]deadLetterJSON, 0, len(dls))}
	for _, d := range dls {
		j := deadLetterJSON{ID: d.ID, Collection: d.Collection, Stage: d.Stage, Reason: d.Reason, Error: d.Error,
			FieldPath: d.FieldPath, SQLState: d.SQLState, DocumentKey: d.DocumentKey, Seq: d.StreamSeq,
			CreatedAt: d.CreatedAt.UTC(), Note: d.Note}
		if !d.ResolvedAt.IsZero() {
			at := d.ResolvedAt.UTC()
			j.ResolvedAt = &at
		}
		doc.DeadLetters = append(doc.DeadLetters, j)
	}
	return doc
}
