package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mongopg/replicator/internal/testenv"
	"github.com/mongopg/replicator/replicator/buffer"
	"github.com/mongopg/replicator/schemas/envelope"
	"github.com/mongopg/replicator/sink"
	"github.com/mongopg/replicator/transform"
)

// shownLine is one output line of `buffer show`, read back.
type shownLine struct {
	Seq       uint64             `json:"seq"`
	Subject   string             `json:"subject"`
	Time      time.Time          `json:"time"`
	MsgID     string             `json:"msg_id"`
	Envelope  *envelope.Envelope `json:"envelope"`
	Error     string             `json:"error"`
	Raw       *string            `json:"raw"`
	RawBase64 []byte             `json:"raw_base64"`
}

// testStream opens a buffer with a stream of its own on the server at url,
// provisioned the way the replicator does, so a shared server
// (REPLICATOR_TEST_NATS_URL) cannot mix in other data; the stream and its
// position bucket are deleted after the test.
func testStream(t *testing.T, url, name string) (*buffer.Buffer, buffer.Config) {
	t.Helper()
	id := time.Now().UnixNano()
	bcfg := buffer.Config{URL: url, Stream: fmt.Sprintf("%s%d", name, id), SubjectPrefix: fmt.Sprintf("%s%d", strings.ToLower(name), id)}
	buf, err := buffer.Open(context.Background(), bcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		js := buf.JetStream()
		_ = js.DeleteStream(context.Background(), bcfg.Stream)
		_ = js.DeleteKeyValue(context.Background(), bcfg.Stream+"_capture")
		buf.Close()
	})
	return buf, bcfg
}

func TestBufferShowCommand(t *testing.T) {
	ctx := context.Background()
	srv := testenv.NATS(t)
	buf, bcfg := testStream(t, srv.URL, "SHOW")
	js := buf.JetStream()
	const ns = "vuln.advisories" // the collection of designConfig
	start := time.Now()

	publish := func(subject string, data []byte, opts ...jetstream.PublishOpt) uint64 {
		t.Helper()
		ack, err := js.Publish(ctx, subject, data, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	// Six envelopes of the collection, each followed by a message of another
	// collection, then two messages that do not decode: one UTF-8, one not.
	var seqs []uint64 // the collection's stream sequences, in order
	ops := []string{"insert", "update", "replace", "update", "delete", "insert"}
	for i, op := range ops {
		e := &envelope.Envelope{
			Kind:        envelope.KindChange,
			Collection:  ns,
			ClusterTime: transform.ClusterTime{T: 1_700_000_000 + uint32(i), I: uint32(i + 1)},
			Ordinal:     1,
			Token:       fmt.Sprintf("826%04d", i),
			Operation:   op,
			DocumentKey: fmt.Sprintf(`{"_id":"d%d"}`, i),
		}
		data, err := envelope.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, publish(buf.Subject(ns), data, jetstream.WithMsgID(e.Token)))
		publish(buf.Subject("vuln.other"), data)
	}
	text, binary := []byte("not an envelope"), []byte{0xff, 0xfe, 0x00, 0x01}
	for _, b := range [][]byte{text, binary} {
		if _, err := envelope.Decode(b); err == nil {
			t.Fatalf("envelope.Decode accepts %q; the test needs undecodable data", b)
		}
		seqs = append(seqs, publish(buf.Subject(ns), b))
	}
	// The applier's durable consumer: showing must leave it as it is.
	if _, err := js.CreateOrUpdateConsumer(ctx, bcfg.Stream, jetstream.ConsumerConfig{
		Durable: sink.Durable(ns), FilterSubject: buf.Subject(ns), AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}

	show := func(t *testing.T, args ...string) (int, []shownLine, string) {
		t.Helper()
		args = append([]string{"buffer", "show", "--config", designConfig, "--collection", ns, "--nats-url", srv.URL,
			"--stream", bcfg.Stream, "--subject-prefix", bcfg.SubjectPrefix}, args...)
		code, out, errs := run(t, args...)
		var lines []shownLine
		for l := range strings.Lines(out) {
			var s shownLine
			if err := json.Unmarshal([]byte(l), &s); err != nil {
				t.Fatalf("output line %q is not JSON: %v", l, err)
			}
			lines = append(lines, s)
		}
		return code, lines, errs
	}
	seqsOf := func(lines []shownLine) []uint64 {
		var out []uint64
		for _, l := range lines {
			out = append(out, l.Seq)
		}
		return out
	}

	t.Run("decoded fields", func(t *testing.T) {
		code, lines, errs := show(t, "--seq", "0")
		if code != 0 || len(lines) != len(seqs) {
			t.Fatalf("code %d, %d lines (want %d), stderr %q", code, len(lines), len(seqs), errs)
		}
		for i, op := range ops {
			l := lines[i]
			e := l.Envelope
			if e == nil {
				t.Fatalf("line %d: no envelope: %+v", i, l)
			}
			if l.Seq != seqs[i] || l.Subject != buf.Subject(ns) || l.MsgID != e.Token || l.Error != "" {
				t.Errorf("line %d: %+v", i, l)
			}
			if l.Time.Before(start.Add(-time.Minute)) || l.Time.After(time.Now().Add(time.Minute)) {
				t.Errorf("line %d: stored time %s", i, l.Time)
			}
			want := transform.ClusterTime{T: 1_700_000_000 + uint32(i), I: uint32(i + 1)}
			if e.Collection != ns || e.Operation != op || e.ClusterTime != want || e.Kind != envelope.KindChange ||
				e.DocumentKey != fmt.Sprintf(`{"_id":"d%d"}`, i) || e.Token != fmt.Sprintf("826%04d", i) {
				t.Errorf("line %d: envelope %+v", i, e)
			}
		}
		if l := lines[len(ops)]; l.Envelope != nil || l.Error == "" || l.Raw == nil || *l.Raw != string(text) || l.RawBase64 != nil {
			t.Errorf("UTF-8 undecodable message: %+v", l)
		}
		if l := lines[len(ops)+1]; l.Envelope != nil || l.Error == "" || l.Raw != nil || string(l.RawBase64) != string(binary) {
			t.Errorf("binary undecodable message: %+v", l)
		}
	})

	cases := []struct {
		name string
		args []string
		want []uint64
	}{
		{"default is the last 10", nil, seqs},
		{"seq with count", []string{"--seq", fmt.Sprint(seqs[1]), "--count", "2"}, seqs[1:3]},
		{"seq between messages starts at the next one", []string{"--seq", fmt.Sprint(seqs[1] + 1), "--count", "3"}, seqs[2:5]},
		{"seq with the default count", []string{"--seq", fmt.Sprint(seqs[2])}, seqs[2:]},
		{"count past the end", []string{"--seq", fmt.Sprint(seqs[6]), "--count", "10"}, seqs[6:]},
	}
	for k := 1; k <= len(seqs)+1; k++ {
		cases = append(cases, struct {
			name string
			args []string
			want []uint64
		}{fmt.Sprintf("last %d", k), []string{"--last", fmt.Sprint(k)}, seqs[max(0, len(seqs)-k):]})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, lines, errs := show(t, tc.args...)
			if got := seqsOf(lines); code != 0 || !slices.Equal(got, tc.want) {
				t.Fatalf("code %d, sequences %v (want %v), stderr %q", code, got, tc.want, errs)
			}
		})
	}

	errCases := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"unknown collection", []string{"--collection", "vuln.nope"}, 2, "configured: vuln.advisories"},
		{"no collection", []string{"--collection", ""}, 2, "want --collection"},
		{"seq and last", []string{"--seq", "1", "--last", "2"}, 2, "not both"},
		{"count without seq", []string{"--count", "2"}, 2, "--count goes with --seq"},
		{"zero last", []string{"--last", "0"}, 2, "positive"},
		{"bad seq", []string{"--seq", "x"}, 2, "--seq"},
		{"seq past the end", []string{"--seq", fmt.Sprint(seqs[len(seqs)-1] + 1)}, 1, fmt.Sprintf("at or after sequence %d", seqs[len(seqs)-1]+1)},
		{"empty subject", []string{"--subject-prefix", "elsewhere"}, 1, "no messages for vuln.advisories in stream " + bcfg.Stream},
		{"unknown stream", []string{"--stream", "NOPE"}, 1, "no stream NOPE"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"buffer", "show", "--config", designConfig, "--nats-url", srv.URL,
				"--stream", bcfg.Stream, "--subject-prefix", bcfg.SubjectPrefix}
			if !slices.Contains(tc.args, "--collection") {
				args = append(args, "--collection", ns)
			}
			args = append(args, tc.args...)
			code, out, errs := run(t, args...)
			if code != tc.code || out != "" || !strings.Contains(errs, tc.err) {
				t.Fatalf("code %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, out, errs, tc.err)
			}
		})
	}
	t.Run("no buffer flags without nats-url", func(t *testing.T) {
		code, _, errs := run(t, "buffer", "show", "--config", designConfig, "--collection", ns, "--stream", "X")
		if code != 2 || !strings.Contains(errs, "go with --nats-url") {
			t.Fatalf("code %d, stderr %q", code, errs)
		}
	})
	t.Run("help", func(t *testing.T) {
		code, out, errs := run(t, "buffer", "show", "--help")
		if code != 0 || errs != "" || !strings.Contains(out, "JSON Lines") || !strings.Contains(out, "--last") {
			t.Fatalf("code %d, stdout %q, stderr %q", code, out, errs)
		}
	})

	// Read-only: the durable consumer is where it was, nothing was acked,
	// and the counting consumers are gone.
	c, err := js.Consumer(ctx, bcfg.Stream, sink.Durable(ns))
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Stream != 0 || info.AckFloor.Stream != 0 || info.NumAckPending != 0 || info.NumPending != uint64(len(seqs)) {
		t.Errorf("durable consumer changed: delivered %+v, ack floor %+v, pending %d", info.Delivered, info.AckFloor, info.NumPending)
	}
	s, err := js.Stream(ctx, bcfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Consumers; n != 1 {
		t.Errorf("%d consumers on the stream after showing, want only the durable one", n)
	}
}
