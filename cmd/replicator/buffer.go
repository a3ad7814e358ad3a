package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/replicator/config"
	"github.com/mongopg/replicator/schemas/envelope"
)

func bufferCommand() command {
	return command{
		name:    "buffer",
		summary: "show one collection's buffer messages in readable form (JSON Lines)",
		run:     runBuffer,
	}
}

func runBuffer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: want `buffer show`", errUsage)
	}
	switch args[0] {
	case "show":
		return runBufferShow(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, "Inspect the buffer (the NATS JetStream stream between capture and apply)\n"+
			"without changing it. Buffer messages are encoded envelopes, which `nats stream\n"+
			"get` cannot show readably; `buffer show` decodes them.\n\n"+
			"Usage:\n  replicator buffer show --collection C [--seq N [--count K] | --last K] [--config FILE] [--nats-url URL]\n\n"+
			"Run 'replicator buffer show --help' for its flags.")
		return nil
	}
	return fmt.Errorf("%w: unknown subcommand %q (want show)", errUsage, args[0])
}

const defaultShowCount = 10

func runBufferShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const summary = "Show one collection's buffer messages, decoded, as JSON Lines (one JSON object\n" +
		"per line, for jq): the stream sequence, subject, stored time, Nats-Msg-Id and\n" +
		"the envelope; a message that does not decode shows the error and its raw data\n" +
		"(\"raw\", or \"raw_base64\" when it is not UTF-8). By default the last 10\n" +
		"messages; --seq N shows --count messages from the collection's first message\n" +
		"at or after stream sequence N; --last K the last K. Read-only: it never acks\n" +
		"and never touches the applier's consumers, so it is safe while the replicator\n" +
		"runs. Without --nats-url it reaches the buffer through the config file\n" +
		"(starting the embedded server on data_dir when no replicator runs).\n\n" +
		"Example:\n" +
		"  replicator buffer show --config F --collection vuln.advisories --last 3 | jq .envelope.op"
	fs := newFlagSet("buffer show", "buffer show --collection C [--seq N [--count K] | --last K] [--config FILE] [--nats-url URL]", summary, stderr)
	cfgPath := fs.String("config", "replicator.yaml", "config `file` (its collections and buffer sections are used)")
	collection := fs.String("collection", "", "source `namespace` db.collection, one of the config's collections")
	seqFlag := fs.String("seq", "", "start at this stream `sequence`: the collection's first message at or after it")
	countFlag := fs.String("count", "", "with --seq: show `K` messages (default 10)")
	lastFlag := fs.String("last", "", "show the last `K` messages (default: the last 10)")
	natsURL := fs.String("nats-url", "", "NATS `URL` of the buffer (instead of the config file's buffer section)")
	streamFlag := fs.String("stream", "", "JetStream `stream` (with --nats-url; default: the config's buffer.stream)")
	prefixFlag := fs.String("subject-prefix", "", "subject `prefix` (with --nats-url; default: the config's buffer.subject_prefix)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *collection == "" {
		return fmt.Errorf("%w: want --collection db.collection", errUsage)
	}
	if *seqFlag != "" && *lastFlag != "" {
		return fmt.Errorf("%w: give --seq or --last, not both", errUsage)
	}
	if *countFlag != "" && *seqFlag == "" {
		return fmt.Errorf("%w: --count goes with --seq (for the last K messages use --last K)", errUsage)
	}
	if *natsURL == "" && (*streamFlag != "" || *prefixFlag != "") {
		return fmt.Errorf("%w: --stream and --subject-prefix go with --nats-url (otherwise the config's buffer section names them)", errUsage)
	}
	var (
		start uint64
		n     = defaultShowCount
		err   error
	)
	if *seqFlag != "" {
		if start, err = strconv.ParseUint(*seqFlag, 10, 64); err != nil {
			return fmt.Errorf("%w: --seq %q: want a stream sequence, e.g. 120000", errUsage, *seqFlag)
		}
		if *countFlag != "" {
			if n, err = positive("--count", *countFlag); err != nil {
				return err
			}
		}
	} else if *lastFlag != "" {
		if n, err = positive("--last", *lastFlag); err != nil {
			return err
		}
	}

	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return reportConfig(err, stderr)
	}
	if err := knownCollection(cfg, *collection); err != nil {
		return err
	}
	streamName, prefix := cfg.Buffer.Stream, cfg.Buffer.SubjectPrefix
	if *streamFlag != "" {
		streamName = *streamFlag
	}
	if *prefixFlag != "" {
		prefix = *prefixFlag
	}
	js, streamName, prefix, closeBuf, err := openBuffer(ctx, cfg, *natsURL, streamName, prefix)
	defer closeBuf()
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, streamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("no stream %s in the buffer (has the replicator run against it? check --stream / buffer.stream)", streamName)
	}
	if err != nil {
		return fmt.Errorf("buffer: stream %s: %w", streamName, err)
	}
	subject := envelope.Subject(prefix, *collection)
	lastMsg, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("no messages for %s in stream %s (subject %s)", *collection, streamName, subject)
	}
	if err != nil {
		return fmt.Errorf("buffer: last message of %s: %w", subject, err)
	}
	if *seqFlag == "" {
		first := stream.CachedInfo().State.FirstSeq
		if start, err = kthLast(ctx, stream, subject, first, lastMsg.Sequence, n); err != nil {
			return err
		}
	} else if start > lastMsg.Sequence {
		return fmt.Errorf("no messages for %s in stream %s at or after sequence %d; its last one is at %d", *collection, streamName, start, lastMsg.Sequence)
	}

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for seq, shown := max(start, 1), 0; shown < n; shown++ {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // the end of the subject
		}
		if err != nil {
			return fmt.Errorf("buffer: message of %s at or after %d: %w", subject, seq, err)
		}
		if err := enc.Encode(showMessage(m)); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
	return nil
}

// shownMessage is one line of `buffer show` output.
type shownMessage struct {
	Seq      uint64             `json:"seq"`
	Subject  string             `json:"subject"`
	Time     string             `json:"time"`
	MsgID    string             `json:"msg_id,omitempty"`
	Envelope *envelope.Envelope `json:"envelope,omitempty"`
	// Error, Raw and RawBase64 describe a message that does not decode.
	Error     string  `json:"error,omitempty"`
	Raw       *string `json:"raw,omitempty"`
	RawBase64 []byte  `json:"raw_base64,omitempty"`
}

func showMessage(m *jetstream.RawStreamMsg) shownMessage {
	s := shownMessage{
		Seq:     m.Sequence,
		Subject: m.Subject,
		Time:    m.Time.UTC().Format(time.RFC3339Nano),
		MsgID:   m.Header.Get(nats.MsgIdHdr),
	}
	env, err := envelope.Decode(m.Data)
	switch {
	case err == nil:
		s.Envelope = env
	case utf8.Valid(m.Data):
		raw := string(m.Data)
		s.Error, s.Raw = err.Error(), &raw
	default:
		s.Error, s.RawBase64 = err.Error(), m.Data
	}
	return s
}

// kthLast returns the stream sequence of the k-th last message on subject,
// whose last message is at sequence last, or first (the stream's first
// sequence) when the subject holds fewer than k messages. JetStream reads
// forward only, so it binary-searches the start sequence by the number of
// subject messages from there on, about log2(last-first) probes.
func kthLast(ctx context.Context, s jetstream.Stream, subject string, first, last uint64, k int) (uint64, error) {
	if k <= 1 {
		return last, nil
	}
	// The k-th last message is at or before last-k+1.
	if last+1 < first+uint64(k) {
		return first, nil
	}
	enough := func(seq uint64) (bool, error) {
		n, err := pendingFrom(ctx, s, subject, seq)
		return n >= uint64(k), err
	}
	ok, err := enough(first)
	if err != nil || !ok {
		return first, err
	}
	lo, hi := first, last-uint64(k)+2 // enough(lo) holds; hi is past the answer
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := enough(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// pendingFrom counts the messages on subject at or after stream sequence
// seq. It asks the server through a short-lived ephemeral consumer (no
// acks, in memory, never pulled from) and deletes it at once; the
// inactivity threshold removes it should the delete fail. Durable
// consumers are untouched.
func pendingFrom(ctx context.Context, s jetstream.Stream, subject string, seq uint64) (uint64, error) {
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "replicator buffer show: counts messages, reads none",
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       seq,
		FilterSubject:     subject,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("buffer: count messages of %s from %d: %w", subject, seq, err)
	}
	info := c.CachedInfo()
	_ = s.DeleteConsumer(ctx, info.Name) // best effort; see above
	return info.NumPending, nil
}

// knownCollection checks that ns is one of the config's collections.
func knownCollection(cfg *config.Config, ns string) error {
	var names []string
	for _, c := range cfg.Collections {
		if c.Source == ns {
			return nil
		}
		names = append(names, c.Source)
	}
	return fmt.Errorf("%w: collection %q is not in %s; configured: %s", errUsage, ns, cfg.File, strings.Join(names, ", "))
}

func positive(name, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: %s %q: want a positive number", errUsage, name, s)
	}
	return n, nil
}
