package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// reportFiles writes a cutover's report files into one directory.
type reportFiles struct{ dir string }

// newReportFiles checks dir before the cutover starts, so a long drain
// does not end in a report that cannot be written. It creates dir when
// missing.
func newReportFiles(dir string) (reportFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return reportFiles{}, fmt.Errorf("--out %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".cutover-*")
	if err != nil {
		return reportFiles{}, fmt.Errorf("--out %s: cannot write there: %w", dir, err)
	}
	name := probe.Name()
	probe.Close()
	os.Remove(name)
	return reportFiles{dir: dir}, nil
}

// write names the files after doc's start time (cutover-<UTC
// time>.md and .json, with -2, -3, … when those exist), records their
// paths in doc.Files and writes both.
func (r reportFiles) write(doc *cutoverDoc) error {
	base := "cutover-" + doc.StartedAt.UTC().Format("20060102T150405Z")
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		md, js := filepath.Join(r.dir, name+".md"), filepath.Join(r.dir, name+".json")
		mdFile, err := os.OpenFile(md, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		jsFile, err := os.OpenFile(js, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			mdFile.Close()
			os.Remove(md)
			continue
		}
		if err != nil {
			mdFile.Close()
			return fmt.Errorf("write report: %w", err)
		}
		doc.Files = cutoverFiles{Markdown: absPath(md), JSON: absPath(js)}
		var mdBuf, jsBuf bytes.Buffer
		writeCutoverMarkdown(&mdBuf, doc)
		err = writeJSON(&jsBuf, doc)
		if err == nil {
			_, err = mdFile.Write(mdBuf.Bytes())
		}
		if err == nil {
			_, err = jsFile.Write(jsBuf.Bytes())
		}
		err = errors.Join(err, mdFile.Close(), jsFile.Close())
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		return nil
	}
}

// absPath is p made absolute, or p when that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
