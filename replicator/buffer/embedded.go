package buffer

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mongopg/replicator/replicator/redact"
)

// embeddedMaxPayload lets one message carry a 16 MB source document and its
// rows; NATS refuses larger payloads than this.
const embeddedMaxPayload = 64 << 20

// Files under DataDir.
const (
	lockFile = "LOCK"      // flock held by the process running the server
	urlFile  = "nats.url"  // client URL of the running embedded server (no credentials)
	jsDir    = "jetstream" // JetStream storage
)

// embedded is a nats-server running inside this process, or a pointer to
// one another process on this machine runs for the same DataDir.
type embedded struct {
	srv   *server.Server
	lock  *os.File
	url   string
	token string // every client presents it (auth.go)
}

// startEmbedded starts the embedded server for dataDir, or, when another
// process already runs it, returns that server's URL and token with srv
// nil. Only one server ever uses a data directory: a flock on DataDir/LOCK
// guards it. The server listens on loopback only and requires the token of
// DataDir/nats.token (auth.go).
func startEmbedded(dataDir, listen string, log *slog.Logger) (*embedded, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dataDir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return attachEmbedded(dataDir)
		}
		return nil, fmt.Errorf("embedded nats: lock %s: %w", dataDir, err)
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		lock.Close()
		return nil, fmt.Errorf("embedded nats: listen address %q is not loopback; run a NATS server and set nats_url to expose the buffer", listen)
	}
	tok, err := ownToken(dataDir)
	if err != nil {
		lock.Close()
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		// Reuse the previous run's port when it is free, so processes
		// attached to this server (apply or capture started separately)
		// find it again at the same URL after a restart.
		port = server.RANDOM_PORT
		if p := previousPort(dataDir); p > 0 && portFree(host, p) {
			port = p
		}
	}
	opts := &server.Options{
		ServerName: "replicator-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, jsDir),
		MaxPayload: embeddedMaxPayload,
		// Authorization makes the server refuse clients without the
		// token, in process and on the loopback port alike.
		Authorization: tok,
		NoSigs:        true,
		NoLog:         true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(60 * time.Second) {
		srv.Shutdown()
		lock.Close()
		return nil, errors.New("embedded nats: server not ready within 60s")
	}
	url := srv.ClientURL()
	if err := os.WriteFile(filepath.Join(dataDir, urlFile), []byte(url+"\n"), 0o644); err != nil {
		srv.Shutdown()
		lock.Close()
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	log.Info("embedded NATS JetStream started", "url", redact.String(url), "store_dir", opts.StoreDir,
		"token_file", filepath.Join(dataDir, tokenFile))
	return &embedded{srv: srv, lock: lock, url: url, token: tok}, nil
}

// attachEmbedded connects to the embedded server another process runs,
// with the token that process keeps in DataDir/nats.token.
func attachEmbedded(dataDir string) (*embedded, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, urlFile))
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %s is locked by another process but its URL is unknown: %w", dataDir, err)
	}
	tok, err := readToken(filepath.Join(dataDir, tokenFile))
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %s is locked by another process but its token is unreadable (run as the same user): %w", dataDir, err)
	}
	return &embedded{url: strings.TrimSpace(string(b)), token: tok}, nil
}

// close shuts the server down (its files stay) and releases the lock.
func (e *embedded) close() {
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
	if e.lock != nil {
		_ = e.lock.Close()
	}
}

// previousPort is the port in DataDir/nats.url from an earlier run, or 0.
func previousPort(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, urlFile))
	if err != nil {
		return 0
	}
	u := strings.TrimSpace(string(b))
	i := strings.LastIndexByte(u, ':')
	if i < 0 {
		return 0
	}
	p, _ := strconv.Atoi(u[i+1:])
	return p
}

func portFree(host string, port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}
