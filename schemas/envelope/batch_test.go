package envelope

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/mongopg/replicator/transform"
)

func changeFrame(t testing.TB, ord uint32, id string) ([]byte, *Envelope) {
	t.Helper()
	e := &Envelope{Kind: KindChange, Collection: "app.items", ClusterTime: transform.ClusterTime{T: 7, I: 1}, Ordinal: ord,
		Token: "82" + id, Operation: "insert", DocumentKey: `{"_id":"` + id + `"}`,
		Mutations: []transform.Mutation{{Table: "app.items", Op: transform.OpUpsert,
			Key: []transform.Value{transform.Text(id)}, Values: []transform.Value{transform.Text(id), transform.Null}}}}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return b, e
}

func TestBatchRoundTrip(t *testing.T) {
	var frames [][]byte
	var want []*Envelope
	for k, id := range []string{"a", "b", strings.Repeat("c", 300)} { // a frame longer than 127 bytes
		b, e := changeFrame(t, uint32(k+1), id)
		frames = append(frames, b)
		want = append(want, e)
	}
	msg := AppendBatch([]byte("prefix"), frames)
	if !bytes.HasPrefix(msg, []byte("prefix")) {
		t.Fatal("AppendBatch did not append")
	}
	msg = msg[len("prefix"):]
	if !IsBatch(msg) || IsBinary(msg) {
		t.Fatalf("a batch is a batch and not a version 2 envelope: % x", msg[:2])
	}
	got, err := Frames(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, frames) {
		t.Fatal("Frames returned other frames than were written")
	}
	envs, err := DecodeAll(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(envs, want) {
		t.Fatalf("DecodeAll:\n got %#v\nwant %#v", envs, want)
	}
	// DecodeAll copies: changing the message changes nothing decoded.
	for i := range msg {
		msg[i] = 0
	}
	if !reflect.DeepEqual(envs, want) {
		t.Fatal("DecodeAll's result shares the message's memory")
	}

	// A version 2 envelope is its own single frame.
	single, e := changeFrame(t, 1, "z")
	got, err = Frames(single)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], single) {
		t.Fatalf("Frames of a version 2 envelope: %v %q", err, got)
	}
	envs, err = DecodeAll(single)
	if err != nil || len(envs) != 1 || !reflect.DeepEqual(envs[0], e) {
		t.Fatalf("DecodeAll of a version 2 envelope: %v %#v", err, envs)
	}
}

func TestBatchCorrupt(t *testing.T) {
	a, _ := changeFrame(t, 1, "a")
	hb, err := Encode(&Envelope{Kind: KindHeartbeat, Collection: "app.items"})
	if err != nil {
		t.Fatal(err)
	}
	good := AppendBatch(nil, [][]byte{a, a})
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"empty batch", []byte{batchFormat, 0}, "no envelope"},
		{"no count", []byte{batchFormat}, "truncated"},
		{"cut short", good[:len(good)-1], "frame 2 of 2"},
		{"count larger than the message", []byte{batchFormat, 100, 1, 2}, "truncated"},
		{"bytes after the last frame", append(append([]byte(nil), good...), 0), "bytes after the last frame"},
		{"a heartbeat frame", AppendBatch(nil, [][]byte{a, hb}), "frame 2 of 2 is not a version 2 change envelope"},
		{"a nested batch", AppendBatch(nil, [][]byte{good}), "frame 1 of 1 is not"},
		{"an empty frame", AppendBatch(nil, [][]byte{a, {}}), "frame 2 of 2 is not"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Frames(tc.msg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Frames: %v, want an error with %q", err, tc.want)
			}
			if _, err := DecodeAll(tc.msg); err == nil {
				t.Fatal("DecodeAll decoded a corrupt batch")
			}
		})
	}
	// A frame that is framed right but does not decode fails DecodeAll
	// with its place, not Frames.
	bad := append([]byte(nil), a[:len(a)-1]...)
	msg := AppendBatch(nil, [][]byte{a, bad})
	if _, err := Frames(msg); err != nil {
		t.Fatalf("Frames of a well-framed batch: %v", err)
	}
	if _, err := DecodeAll(msg); err == nil || !strings.Contains(err.Error(), "frame 2 of 2") {
		t.Fatalf("DecodeAll: %v, want the bad frame named", err)
	}
}

// FuzzFrames: no input panics Frames, and the frames of whatever frames
// re-batch to a message with the same frames.
func FuzzFrames(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 5 {
		var frames [][]byte
		for range 1 + r.IntN(4) {
			e := randomEnvelope(r)
			e.Kind, e.Ordinal = KindChange, 1+r.Uint32N(9)
			b, _ := Encode(&e)
			frames = append(frames, b)
		}
		f.Add(AppendBatch(nil, frames))
	}
	f.Add([]byte{batchFormat, 1, 2, binaryFormat, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, err := Frames(b)
		if err != nil || !IsBatch(b) {
			return
		}
		again, err := Frames(AppendBatch(nil, frames))
		if err != nil || !reflect.DeepEqual(again, frames) {
			t.Fatalf("frames re-batch differently (%v):\n got %q\nwant %q", err, again, frames)
		}
	})
}
