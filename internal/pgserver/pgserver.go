// Package pgserver starts a private PostgreSQL server from the system's
// binaries (initdb, postgres) on a directory and a free loopback port. Tests
// and the demo use it; production deployments point at their own server.
//
// PostgreSQL refuses to run as root. When the current user is root, the
// server runs as the unprivileged "postgres" user (created by the Debian
// package) on a directory that user owns.
//
// The server process is tied to this process: if this process dies, the
// kernel sends the server SIGQUIT (Linux parent-death signal), so a killed
// test run leaves no server behind.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options configures a private server.
type Options struct {
	// Dir holds the data directory and socket; it is created if missing. A
	// directory already initialised by an earlier Start is reused.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Durable keeps fsync on. Tests turn it off for speed; a crash of the
	// machine (not of the server) may then lose data, which tests never do.
	Durable bool
	// Settings are extra postgresql.conf settings, name → value.
	Settings map[string]string
	// Log receives the server's output; nil discards it.
	Log *os.File
}

// Server is a running private PostgreSQL server.
type Server struct {
	opts    Options
	binDir  string
	dataDir string
	sockDir string
	port    int
	cred    *syscall.Credential

	mu   sync.Mutex
	proc *os.Process
	done chan struct{}
}

// Start initialises (if needed) and starts a server.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, binDir: bin, port: opts.Port}
	s.dataDir = filepath.Join(opts.Dir, "data")
	s.sockDir = filepath.Join(opts.Dir, "sock")
	if s.port == 0 {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := s.prepare(); err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// FindBinDir finds the directory holding initdb and postgres: next to the
// initdb found on PATH (symlinks resolved), else the newest
// /usr/lib/postgresql/*/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("pgserver: initdb not found on PATH or in /usr/lib/postgresql/*/bin (install the postgresql package)")
	}
	best, bestVer := "", -1
	for _, m := range matches {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if v > bestVer {
			best, bestVer = m, v
		}
	}
	return filepath.Dir(best), nil
}

func (s *Server) prepare() error {
	if err := os.MkdirAll(s.sockDir, 0o700); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("pgserver: running as root needs the unprivileged user postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The server user must own its directories and reach them.
		for _, d := range []string{s.opts.Dir, s.sockDir} {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("pgserver: %w", err)
			}
		}
		if err := allowTraverse(s.opts.Dir); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	cmd := exec.Command(filepath.Join(s.binDir, "initdb"), "-D", s.dataDir, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--locale=C", "-N")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgserver: initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allowTraverse makes every ancestor of dir searchable by other users, so a
// server running as postgres reaches a directory under a root-owned tree.
func allowTraverse(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				return fmt.Errorf("pgserver: %w", err)
			}
		}
	}
	return nil
}

// Start starts a stopped server and waits until it accepts connections.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	args := []string{"-D", s.dataDir, "-p", strconv.Itoa(s.port), "-k", s.sockDir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
		"-c", "shared_buffers=128MB", "-c", "max_wal_size=2GB"}
	if !s.opts.Durable {
		// fsync=off survives a crash of the server process (the kernel keeps
		// the pages); only a crash of the machine could lose data.
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	for k, v := range s.opts.Settings {
		args = append(args, "-c", k+"="+v)
	}
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if s.opts.Log != nil {
		cmd.Stdout, cmd.Stderr = s.opts.Log, s.opts.Log
	}
	// The parent-death signal fires when the thread that forked the child
	// exits, so fork from a thread that lives as long as the process.
	if err := startOnKeeperThread(cmd); err != nil {
		return fmt.Errorf("pgserver: start postgres: %w", err)
	}
	s.proc = cmd.Process
	done := make(chan struct{})
	s.done = done
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.ready(ctx) {
			return nil
		}
		select {
		case <-done:
			s.proc = nil
			return errors.New("pgserver: postgres exited during start (see its log)")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("pgserver: postgres did not accept connections within 60s")
		}
	}
}

// Stop shuts the server down (fast mode: active transactions roll back) and
// waits for it to exit.
func (s *Server) Stop() error { return s.signal(syscall.SIGINT) }

// Kill stops the server abruptly (immediate mode: crash recovery on the
// next start), as a crash would.
func (s *Server) Kill() error { return s.signal(syscall.SIGQUIT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	_ = s.proc.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		_ = s.proc.Kill()
		<-s.done
	}
	s.proc = nil
	return nil
}

// Restart stops and starts the server on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start(ctx)
}

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

func (s *Server) hostPort() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns a connection URL for database db as the superuser postgres.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", s.hostPort(), db)
}

// ready reports whether the server accepts a query (it accepts TCP
// connections before recovery ends).
func (s *Server) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx) == nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var keeper struct {
	once sync.Once
	reqs chan keeperReq
}

type keeperReq struct {
	cmd *exec.Cmd
	err chan error
}

// startOnKeeperThread starts cmd from one locked OS thread that never exits.
func startOnKeeperThread(cmd *exec.Cmd) error {
	keeper.once.Do(func() {
		keeper.reqs = make(chan keeperReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives with the process
			for r := range keeper.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := keeperReq{cmd: cmd, err: make(chan error, 1)}
	keeper.reqs <- r
	return <-r.err
}
