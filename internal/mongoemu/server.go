package mongoemu

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdg-go/scram"
)

// Options configures a Server.
type Options struct {
	// ReplicaSet is the replica set name advertised in hello; default "rs0".
	ReplicaSet string
	// OplogMaxEvents bounds the number of retained oplog entries; 0 means
	// unbounded. The oldest entries are discarded beyond this.
	OplogMaxEvents int
	// OplogMaxBytes bounds the retained oplog size in bytes, counted as the
	// memory the entries keep alive (see entry.computeSize); 0 means
	// unbounded. The oldest entries are discarded beyond this.
	OplogMaxBytes int64
	// Logger receives diagnostics; nil discards them. Every command is logged
	// at Debug level.
	Logger *slog.Logger
	// ClockOffset moves the server's clock by this much: cluster times, the
	// oplog's and change events' wall times and hello's localTime, the way a
	// primary whose clock is off would report them. Tests of lag under
	// clock skew set it.
	ClockOffset time.Duration
	// Users, when not empty, makes the server require authentication, as
	// mongod --auth does: user name → password of users of the admin
	// database, who authenticate with SCRAM-SHA-256 (auth.go).
	Users map[string]string
	// TLS, when set, makes the server accept only TLS connections with this
	// configuration (mongod's tlsMode requireTLS); URI then has tls=true.
	TLS *tls.Config
}

// StandaloneOplogMaxBytes is the OplogMaxBytes of the standalone server
// (cmd/mongoemu) and of the demo; the library default stays unbounded. An
// entry takes about 650 bytes for documents of a few hundred bytes, so
// 64 MiB holds some 100,000 entries: minutes of history at hundreds of
// writes a second. A change stream that keeps up reads each entry within a
// second of its write; the rest of the window is room for a reader that
// pauses or restarts. Older resume points fail with
// ChangeStreamHistoryLost (286), as on a real server whose oplog rolled
// over.
const StandaloneOplogMaxBytes = 64 << 20

// Server is an in-memory MongoDB replica-set member speaking the wire protocol.
type Server struct {
	opts Options
	log  *slog.Logger

	ln     net.Listener
	addr   string // bound address
	host   string // advertised host:port (hello hosts/primary/me)
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup

	connMu sync.Mutex
	conns  map[*conn]struct{}
	connID atomic.Int64
	reqID  atomic.Int32

	// mu guards the catalog (databases, collections, documents, indexes).
	// Writers hold it exclusively while they modify data and append to the
	// oplog, so oplog order equals apply order.
	mu  sync.RWMutex
	dbs map[string]*database

	oplog    *oplog
	cursors  *cursorRegistry
	sessions *sessionRegistry
	fail     *failpoints
	started  time.Time
	// scram authenticates Options.Users; nil when there are none.
	scram *scram.Server
}

// New returns a Server that is not yet listening.
func New(opts Options) *Server {
	if opts.ReplicaSet == "" {
		opts.ReplicaSet = "rs0"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:     opts,
		log:      log,
		done:     make(chan struct{}),
		conns:    make(map[*conn]struct{}),
		dbs:      make(map[string]*database),
		cursors:  newCursorRegistry(),
		sessions: newSessionRegistry(),
		fail:     newFailpoints(),
		started:  time.Now(),
	}
	s.oplog = newOplog(opts.OplogMaxEvents, opts.OplogMaxBytes)
	s.oplog.offset = opts.ClockOffset
	return s
}

// Listen binds addr (for example "127.0.0.1:0") and serves connections in
// background goroutines until Close.
func (s *Server) Listen(addr string) error {
	if len(s.opts.Users) > 0 && s.scram == nil {
		sc, err := newSCRAM(s.opts.Users)
		if err != nil {
			return err
		}
		s.scram = sc
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mongoemu: listen: %w", err)
	}
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	s.host = advertisedHost(ln.Addr())
	s.wg.Add(1)
	go s.acceptLoop()
	s.log.Info("mongoemu listening", "addr", s.addr, "replicaSet", s.opts.ReplicaSet)
	return nil
}

// Addr returns the bound address, e.g. "127.0.0.1:54321".
func (s *Server) Addr() string { return s.addr }

// URI returns a connection string for the official drivers.
func (s *Server) URI() string {
	uri := "mongodb://" + s.host + "/?replicaSet=" + s.opts.ReplicaSet
	if s.opts.TLS != nil {
		uri += "&tls=true"
	}
	return uri
}

// advertisedHost is the member address announced in hello: the bound
// address, or the machine's host name when bound to all interfaces (as
// mongod does), so replica-set discovery reconnects to a reachable address.
func advertisedHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	port := strconv.Itoa(tcp.Port)
	if h, err := os.Hostname(); err == nil && h != "" {
		return net.JoinHostPort(h, port)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// Close stops the listener, closes all connections and waits for all
// goroutines to finish.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		close(s.done)
		if s.ln != nil {
			err = s.ln.Close()
		}
		s.connMu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		s.connMu.Unlock()
		s.oplog.wakeAll()
	})
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("accept failed", "err", err)
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := &conn{s: s, nc: nc, id: s.connID.Add(1)}
		s.connMu.Lock()
		select {
		case <-s.done:
			s.connMu.Unlock()
			_ = nc.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.connMu.Unlock()
		s.wg.Add(1)
		go c.serve()
	}
}

// conn is one client connection. Requests on a connection are handled
// sequentially, as the protocol requires.
type conn struct {
	s       *Server
	nc      net.Conn
	r       *bufio.Reader
	id      int64
	appName string
	auth    authState
}

// waitIdle blocks for d, until the server closes, or until the client
// closes the connection (reported as false). It is used while the client
// waits for a reply and sends nothing else (awaitable hello).
func (c *conn) waitIdle(d time.Duration) bool {
	gone := make(chan struct{})
	peeked := make(chan struct{})
	go func() {
		defer close(peeked)
		if _, err := c.r.Peek(1); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				close(gone)
			}
		}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	alive := true
	select {
	case <-t.C:
	case <-gone:
		alive = false
	case <-c.s.done:
		alive = false
	}
	_ = c.nc.SetReadDeadline(time.Now())
	<-peeked
	_ = c.nc.SetReadDeadline(time.Time{})
	return alive
}

var errCloseConn = errors.New("close connection")

func (c *conn) serve() {
	defer c.s.wg.Done()
	defer func() {
		c.s.connMu.Lock()
		delete(c.s.conns, c)
		c.s.connMu.Unlock()
		_ = c.nc.Close()
	}()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	c.r = r
	w := bufio.NewWriterSize(c.nc, 64<<10)
	var out []byte
	for {
		m, err := readMessage(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("connection closed", "conn", c.id, "err", err)
			}
			return
		}
		reply, err := c.handle(m)
		if errors.Is(err, errCloseConn) {
			return
		}
		if m.flags&flagMoreToCome != 0 {
			continue // unacknowledged write: no reply
		}
		out = appendReply(out[:0], m, c.s.reqID.Add(1), reply)
		if _, err := w.Write(out); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
		if cap(out) > 1<<20 {
			out = nil
		}
	}
}
