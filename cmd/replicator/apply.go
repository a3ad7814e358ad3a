package main

import (
	"context"
	"io"

	"github.com/mongopg/replicator/replicator"
)

func applyCommand() command {
	return command{
		name:    "apply",
		summary: "apply buffered changes to PostgreSQL (the second half of run)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runPipeline(ctx, "apply", args, stderr, replicator.Options{Apply: true})
		},
	}
}
