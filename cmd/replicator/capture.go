package main

import (
	"context"
	"io"

	"github.com/mongopg/replicator/replicator"
)

func captureCommand() command {
	return command{
		name:    "capture",
		summary: "capture MongoDB changes into the buffer (the first half of run)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runPipeline(ctx, "capture", args, stderr, replicator.Options{Capture: true, Snapshot: true})
		},
	}
}
