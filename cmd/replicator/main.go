// Command replicator keeps PostgreSQL continuously in sync with MongoDB:
// change streams → per-collection transform → NATS JetStream → idempotent
// apply to PostgreSQL with resumable checkpoints.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/mongopg/replicator/replicator/redact"
)

// command is one subcommand. Each lives in its own file and adds itself to
// the table in commands().
type command struct {
	name    string
	summary string
	// run parses args with its own FlagSet and does the work. It returns
	// errUsage (wrapped or not) for bad invocations.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var errUsage = errors.New("usage")

// errUnhealthy is returned (wrapped) by a command that ran and found the
// replicator unhealthy: `status`.
var errUnhealthy = errors.New("unhealthy")

// The exit codes of every command (README, Exit codes).
const (
	exitOK        = 0 // done; for status: healthy
	exitError     = 1 // the command failed (config problems, a server error, ...)
	exitUsage     = 2 // bad flags or arguments; nothing was done
	exitUnhealthy = 3 // status ran and found the replicator unhealthy
)

const exitCodesHelp = `Exit codes:
  0  success (status: healthy)
  1  error: the command failed (config problems, a server refused, ...)
  2  usage: unknown command, flag or argument; nothing was done
  3  status only: it ran and found the replicator unhealthy (see status --help)`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"}
	}
	if len(args) == 0 {
		usage(stderr, cmds)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		return exitOK
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		out := &commandStderr{Writer: stderr, stdout: stdout}
		// Every command's error is printed through redact: a URL or
		// driver error it quotes loses its credentials.
		err := redact.Error(c.run(ctx, args[1:], stdout, out))
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errUsage), out.flagError:
			printError(stderr, c.name, err)
			return exitUsage
		case errors.Is(err, errUnhealthy):
			printError(stderr, c.name, err)
			return exitUnhealthy
		default:
			printError(stderr, c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "replicator: unknown command %q\n\n", args[0])
	usage(stderr, cmds)
	return exitUsage
}

// printError prints a command's error after "replicator NAME: ", or only
// after "replicator " when the error starts with the command's name
// already: "replicator buffer: stream …", not "replicator buffer: buffer:
// stream …" (the package that made the error keeps its prefix).
func printError(w io.Writer, name string, err error) {
	msg := err.Error()
	if !strings.HasPrefix(msg, name+": ") {
		msg = name + ": " + msg
	}
	fmt.Fprintf(w, "replicator %s\n", msg)
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "replicator keeps PostgreSQL continuously in sync with MongoDB.")
	fmt.Fprintln(w, "\nUsage:\n  replicator <command> [flags]\n\nCommands:")
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'replicator <command> --help' for the flags of one command.")
	fmt.Fprintln(w, "\n"+exitCodesHelp)
}

// newFlagSet returns a FlagSet whose --help prints the command's summary,
// its usage line and its flags on standard output (helpOutput); after a
// bad flag, the flag package's message and the same text go to stderr,
// and runMain exits with exitUsage.
func newFlagSet(name, usageLine, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	errOut := &flagOutput{w: stderr}
	fs.SetOutput(errOut)
	fs.Usage = func() {
		w := io.Writer(stderr)
		if !errOut.failed {
			// No error message came first: --help was asked for.
			w = helpOutput(stderr)
		}
		fs.SetOutput(w)
		defer fs.SetOutput(errOut)
		fmt.Fprintf(w, "%s\n\nUsage:\n  replicator %s\n", summary, usageLine)
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
