package buffer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLeaseLost: another process took the capture lease.
var ErrLeaseLost = errors.New("capture lease lost to another process")

// leaseValue is the stored lease.
type leaseValue struct {
	Holder string `json:"holder"`
	Host   string `json:"host"`
	PID    int    `json:"pid"`
	// PIDSpace is the holder's pidSpace: its PID means something only to
	// a process with the same one.
	PIDSpace string    `json:"pid_space,omitempty"`
	Expires  time.Time `json:"expires"`
}

// Lease is the right to capture one source: at most one process holds it
// (ARCHITECTURE.md, scale-out). It is renewed by Run; a holder that stops
// renewing loses it after the TTL, and a standby takes over.
type Lease struct {
	kv  jetstream.KeyValue
	key string
	ttl time.Duration
	val leaseValue
	rev uint64
}

func leaseKey(source string) string { return "lease." + source }

// AcquireLease takes the capture lease of source, waiting while another
// live process holds it. A lease left by a dead process on this host is
// taken at once; otherwise it expires after ttl.
func (b *Buffer) AcquireLease(ctx context.Context, source string, ttl time.Duration) (*Lease, error) {
	host, _ := os.Hostname()
	l := &Lease{kv: b.kv, key: leaseKey(source), ttl: ttl,
		val: leaseValue{Host: host, PID: os.Getpid(), PIDSpace: pidSpace(), Holder: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())}}
	warnNoPIDSpace(b.log, "capture lease")
	waiting := false
	for {
		ok, holder, err := l.try(ctx)
		if err != nil {
			return nil, err
		}
		if ok {
			if waiting {
				b.log.Info("capture lease acquired", "source", source)
			}
			return l, nil
		}
		if !waiting {
			b.log.Info("waiting for the capture lease held by another process", "source", source, "holder", holder)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(ttl/3, time.Second)):
		}
	}
}

func (l *Lease) try(ctx context.Context) (bool, string, error) {
	l.val.Expires = time.Now().Add(l.ttl)
	data, _ := json.Marshal(l.val)
	e, err := l.kv.Get(ctx, l.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err := l.kv.Create(ctx, l.key, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, "", nil
		}
		if err != nil {
			return false, "", fmt.Errorf("capture lease: %w", err)
		}
		l.rev = rev
		return true, "", nil
	case err != nil:
		return false, "", fmt.Errorf("capture lease: %w", err)
	}
	var cur leaseValue
	if json.Unmarshal(e.Value(), &cur) == nil && time.Now().Before(cur.Expires) && !deadOnThisHost(cur) {
		return false, cur.Holder, nil
	}
	rev, err := l.kv.Update(ctx, l.key, data, e.Revision())
	if err != nil {
		return false, cur.Holder, nil // someone else won the race; look again
	}
	l.rev = rev
	return true, "", nil
}

// deadOnThisHost reports whether the holder was a process on this host
// that no longer exists (a crash leaves its lease behind). The holder's
// PID is looked up only in the PID namespace it was numbered in
// (pidSpace) and on a host of its name: a host name alone does not say
// that, since containers that share the host's name (host networking)
// have PID namespaces of their own, and two machines may have one name;
// nor does the namespace alone, since every machine's first namespace has
// one inode and a cloned virtual machine keeps its boot ID. A number
// looked up elsewhere could name no process while the holder lives, and
// its lease or claims would be taken from under it. A value without a PID
// namespace (written by an older version) waits for its TTL.
func deadOnThisHost(v leaseValue) bool {
	host, _ := os.Hostname()
	if v.PIDSpace == "" || v.PIDSpace != pidSpace() || v.Host != host || v.PID <= 0 || v.PID == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(v.PID, 0), syscall.ESRCH)
}

// pidSpace names the PID namespace of this process: the machine's boot ID
// and the namespace's inode, "" where Linux's /proc does not tell them
// (then no holder is judged dead early). A failed read is tried again at
// the next call; a success is kept.
func pidSpace() string {
	pidSpaceMu.Lock()
	defer pidSpaceMu.Unlock()
	if pidSpaceID == "" {
		boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err != nil {
			return ""
		}
		ns, err := os.Readlink("/proc/self/ns/pid")
		if err != nil {
			return ""
		}
		pidSpaceID = strings.TrimSpace(string(boot)) + "/" + ns
	}
	return pidSpaceID
}

var (
	pidSpaceMu sync.Mutex
	pidSpaceID string
)

// warnNoPIDSpace logs that a holder dead on this host will be taken over
// only after its TTL, when this process has no pidSpace.
func warnNoPIDSpace(log *slog.Logger, what string) {
	if pidSpace() == "" {
		log.Info("no PID namespace identity (/proc/sys/kernel/random/boot_id, /proc/self/ns/pid): a " + what +
			" left by a process that died on this host is taken over only once it expires")
	}
}

// Run renews the lease every ttl/3 until ctx ends; it returns ErrLeaseLost
// if another process took it.
func (l *Lease) Run(ctx context.Context) error {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		l.val.Expires = time.Now().Add(l.ttl)
		data, _ := json.Marshal(l.val)
		rev, err := l.kv.Update(ctx, l.key, data, l.rev)
		if err == nil {
			l.rev = rev
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return ErrLeaseLost
		}
		// The buffer may be restarting: keep trying until the lease would
		// have expired.
		if e, gerr := l.kv.Get(ctx, l.key); gerr == nil && e.Revision() != l.rev {
			return ErrLeaseLost
		}
	}
}

// Release gives the lease up so a standby takes over at once.
func (l *Lease) Release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev))
}
