// Package redact removes credentials from connection strings, and from any
// text that quotes them, before the text is printed or logged: the
// MongoDB, PostgreSQL and NATS URLs of the configuration, and the errors
// and log records that carry them.
//
// Invariants:
//
//   - String never returns a password, a NATS token or a password query
//     or keyword value that it recognises in its input; everything else
//     (scheme, user name, hosts, database, options) is kept, so the
//     output still says which server is meant. Recognised: URL userinfo
//     (user:password@, any scheme, including mongodb+srv and every URL of
//     a comma-separated NATS list; a lone userinfo is a token for nats,
//     tls, ws and wss URLs), password= and sslpassword= (quoted or not,
//     in URL queries and PostgreSQL keyword/value strings) and MongoDB's
//     AWS_SESSION_TOKEN property.
//   - Error keeps the wrapped error reachable (errors.Is and errors.As
//     still see it); only its text is redacted.
//   - Handler redacts the message and every string and error attribute of
//     each log record it passes on.
package redact
