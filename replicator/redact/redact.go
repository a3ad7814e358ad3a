package redact

import (
	"regexp"
	"strings"
)

// Mask replaces every redacted secret.
const Mask = "xxxxx"

var (
	// userinfoRE matches scheme://userinfo@ up to the last "@" before
	// the path, query, fragment or white space, so a password with an
	// unescaped "@" is masked whole.
	userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#\s]*)@`)
	// keywordRE matches password=value and sslpassword=value in URL
	// queries and keyword/value strings, quoted or not.
	keywordRE = regexp.MustCompile(`(?i)\b((?:ssl)?password)(\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"` + "`" + `]*)`)
	// awsTokenRE matches MongoDB's AWS_SESSION_TOKEN auth property.
	awsTokenRE = regexp.MustCompile(`(?i)(AWS_SESSION_TOKEN(?::|%3A))([^\s&,` + "`" + `'"]*)`)
)

// tokenSchemes are the schemes whose lone userinfo (no ":") is a secret
// token rather than a user name.
var tokenSchemes = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}

// String returns s with every credential it recognises replaced by Mask:
// s may be one connection string, a comma-separated list of them, or any
// text (an error message, a log line) that quotes them.
func String(s string) string {
	if s == "" {
		return s
	}
	s = userinfoRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfoRE.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		if user, _, ok := strings.Cut(info, ":"); ok {
			return scheme + "://" + user + ":" + Mask + "@"
		}
		if tokenSchemes[strings.ToLower(scheme)] {
			return scheme + "://" + Mask + "@"
		}
		return m
	})
	s = keywordRE.ReplaceAllString(s, "${1}${2}"+Mask)
	return awsTokenRE.ReplaceAllString(s, "${1}"+Mask)
}

// Error returns err with its text redacted by String, or nil for nil.
// The result wraps err.
func Error(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{err: err}
}

type redacted struct{ err error }

func (e *redacted) Error() string { return String(e.err.Error()) }
func (e *redacted) Unwrap() error { return e.err }
