package main

import (
	"context"
	"io"

	"github.com/mongopg/replicator/replicator/pipeline"
)

func applyCommand() command {
	return command{
		name:    "apply",
		summary: "apply buffered changes to PostgreSQL (the second half of run)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runPipeline(ctx, "apply", args, stderr, pipeline.Options{Apply: true})
		},
	}
}
