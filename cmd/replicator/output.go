package main

import "io"

// commandStderr is the standard error runMain gives a command. It carries
// standard output, where a requested --help goes (helpOutput), and
// records a bad flag, which makes the exit code exitUsage.
type commandStderr struct {
	io.Writer
	stdout    io.Writer
	flagError bool
}

// helpOutput is where help text goes: the standard output of the
// command's stderr when runMain made it, else stderr itself.
func helpOutput(stderr io.Writer) io.Writer {
	if c, ok := stderr.(*commandStderr); ok {
		return c.stdout
	}
	return stderr
}

// flagOutput is a FlagSet's output: the flag package writes to it only to
// report a bad flag, before the usage text.
type flagOutput struct {
	w      io.Writer
	failed bool
}

func (f *flagOutput) Write(p []byte) (int, error) {
	f.failed = true
	if c, ok := f.w.(*commandStderr); ok {
		c.flagError = true
	}
	return f.w.Write(p)
}

// unwrapStderr returns the writer under a commandStderr, for checks on
// the real file (isTerminal).
func unwrapStderr(w io.Writer) io.Writer {
	if c, ok := w.(*commandStderr); ok {
		return c.Writer
	}
	return w
}
