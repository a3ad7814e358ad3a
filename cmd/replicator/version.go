package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mongopg/replicator/replicator"
)

func versionCommand() command {
	return command{
		name:    "version",
		summary: "print the version, VCS revision and Go version of this build (also --version)",
		run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			fs := newFlagSet("version", "version", "Print the version, the VCS revision and the Go version of this build.", stderr)
			if err := fs.Parse(args); err != nil {
				return err
			}
			if fs.NArg() > 0 {
				return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
			}
			fmt.Fprintln(stdout, replicator.Build())
			return nil
		},
	}
}
