package buffer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mongopg/replicator/internal/testenv"
)

// TestBufferKthLast checks the search for where the last K messages of a
// subject start on an irregular layout: bursts of the subject between
// stretches of others, with gaps of every length.
func TestBufferKthLast(t *testing.T) {
	ctx := context.Background()
	srv := testenv.NATS(t)
	id := time.Now().UnixNano()
	bcfg := Config{URL: srv.URL, Stream: fmt.Sprintf("KTH%d", id), SubjectPrefix: fmt.Sprintf("kth%d", id)}
	buf, err := Open(ctx, bcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = buf.JetStream().DeleteStream(context.Background(), bcfg.Stream)
		_ = buf.JetStream().DeleteKeyValue(context.Background(), bcfg.Stream+"_capture")
		buf.Close()
	})
	js := buf.JetStream()
	subject, other := buf.Subject("a.b"), buf.Subject("c.d")
	var seqs []uint64
	for i := range 300 {
		subj := other
		if i%37 < 5 || i%11 == 0 { // bursts of five, plus singles
			subj = subject
		}
		ack, err := js.Publish(ctx, subj, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if subj == subject {
			seqs = append(seqs, ack.Sequence)
		}
	}
	s, err := js.Stream(ctx, bcfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	last := seqs[len(seqs)-1]
	for _, k := range []int{1, 2, 3, 5, 6, 7, 10, len(seqs) / 2, len(seqs) - 1, len(seqs), len(seqs) + 1, 1000} {
		want := uint64(1) // the stream's first sequence when there are fewer than k
		if k <= len(seqs) {
			want = seqs[len(seqs)-k]
		}
		got, err := kthLast(ctx, s, subject, 1, last, k)
		if err != nil || got != want {
			t.Errorf("k=%d: got %d, %v; want %d", k, got, err, want)
		}
	}
}
