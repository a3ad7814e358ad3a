package buffer

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tokenFile holds the embedded server's client token, under DataDir.
//
// Invariants: the embedded server accepts only clients that present this
// token (server.Options.Authorization), in process or over its loopback
// port. The file is created once, by the process holding DataDir/LOCK,
// with 32 random bytes (crypto/rand) and mode 0600, before the server
// starts and before nats.url is written; later starts reuse it, so a
// process of the same user attached to the server (attachEmbedded) reads
// it, and other users cannot. The token never appears in nats.url, in
// Buffer.URL or in any log line.
const tokenFile = "nats.token"

// ownToken returns the token of dataDir's embedded server, creating its
// file on the first start and making an existing file private to its
// owner again. Only the holder of DataDir/LOCK calls it.
func ownToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, tokenFile)
	tok, err := readToken(path)
	if err == nil {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("embedded nats: %w", err)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("embedded nats: generate token: %w", err)
	}
	tok = base64.RawURLEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("embedded nats: create %s: %w", path, err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("embedded nats: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("embedded nats: write %s: %w", path, err)
	}
	return tok, nil
}

// readToken reads the token file at path; an empty file is an error.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("embedded nats: read token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("embedded nats: %s is empty; delete it and restart the process running the embedded server", path)
	}
	return tok, nil
}
