package mongoemu

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"
)

// Authentication, when Options.Users is set, works as on mongod --auth
// with users of the admin database that have SCRAM-SHA-256 credentials:
//
//   - hello answers saslSupportedMechs ["SCRAM-SHA-256"] for a known user
//     and leaves the field out otherwise, so drivers pick their mechanism as
//     they do against mongod. speculativeAuthenticate is ignored; drivers
//     then hold the conversation with saslStart and saslContinue, which
//     ends with the server's last message (done: true), as mongod ends it
//     for clients that send skipEmptyExchange, which every current driver
//     does.
//   - A wrong password, an unknown user, a user of another database or
//     another mechanism fail with AuthenticationFailed (18) and mongod's
//     message, "Authentication failed.", which names none of them.
//   - Until its connection has authenticated, every command but the
//     handshake, ping, buildInfo, the SASL commands, logout and endSessions
//     fails with Unauthorized (13), "Command find requires authentication".
//
// Without Users no command needs authentication, and saslStart and
// authenticate fail with AuthenticationFailed: the server knows no users.

const (
	codeUnauthorized         = 13
	codeAuthenticationFailed = 18
	// scramIterations is mongod's default scramSHA256IterationCount.
	scramIterations = 15000
	authDB          = "admin"
	mechSHA256      = "SCRAM-SHA-256"
)

// noAuthCommands run on a connection that has not authenticated.
var noAuthCommands = map[string]bool{
	"hello": true, "isMaster": true, "ismaster": true, "ping": true, "buildInfo": true, "buildinfo": true,
	"saslStart": true, "saslContinue": true, "authenticate": true, "logout": true, "endSessions": true,
}

// errAuthFailed is mongod's reply to every failed authentication.
func errAuthFailed() *cmdError { return newErr(codeAuthenticationFailed, "Authentication failed.") }

// errNoUsers refuses credentials on a server without Options.Users.
func errNoUsers() *cmdError {
	return newErr(codeAuthenticationFailed, "Authentication is not supported by this server")
}

// newSCRAM returns the SCRAM-SHA-256 server of users (user name →
// password), with stored credentials derived once, as mongod stores them.
func newSCRAM(users map[string]string) (*scram.Server, error) {
	creds := make(map[string]scram.StoredCredentials, len(users))
	for name, password := range users {
		client, err := scram.SHA256.NewClient(name, password, "")
		if err != nil {
			return nil, fmt.Errorf("mongoemu: user %s: %w", name, err)
		}
		salt := make([]byte, 28)
		_, _ = rand.Read(salt)
		c, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: scramIterations})
		if err != nil {
			return nil, fmt.Errorf("mongoemu: user %s: %w", name, err)
		}
		creds[name] = c
	}
	return scram.SHA256.NewServer(func(name string) (scram.StoredCredentials, error) {
		c, ok := creds[name]
		if !ok {
			return scram.StoredCredentials{}, errors.New("unknown user")
		}
		return c, nil
	})
}

// authState is one connection's authentication.
type authState struct {
	user string // authenticated user; "" until then
	conv *scram.ServerConversation
}

// requireAuth fails a command on a connection that has not authenticated
// to a server with users.
func (x *cmdCtx) requireAuth() error {
	if x.s.scram == nil || x.c.auth.user != "" || noAuthCommands[x.name] {
		return nil
	}
	return newErr(codeUnauthorized, "Command %s requires authentication", x.name)
}

// saslMechs adds saslSupportedMechs to a hello reply when the hello asks
// for a known user's mechanisms ("admin.user").
func (x *cmdCtx) saslMechs(reply *Doc) {
	asked := x.body.Get("saslSupportedMechs")
	if x.s.scram == nil || asked.T != tString {
		return
	}
	if _, ok := x.s.opts.Users[userOf(asked.str())]; ok {
		reply.Append("saslSupportedMechs", vArr([]Val{vString(mechSHA256)}))
	}
}

// userOf returns the user of "admin.name", "" for other databases.
func userOf(dbUser string) string {
	if len(dbUser) > len(authDB)+1 && dbUser[:len(authDB)+1] == authDB+"." {
		return dbUser[len(authDB)+1:]
	}
	return ""
}

func cmdSaslStart(x *cmdCtx) (*Doc, error) {
	x.c.auth = authState{}
	if x.s.scram == nil {
		return nil, errNoUsers()
	}
	if x.db != authDB || x.body.Get("mechanism").str() != mechSHA256 {
		return nil, errAuthFailed()
	}
	payload, ok := binaryData(x.body.Get("payload"))
	if !ok {
		return nil, errBadValue("saslStart needs a binary payload")
	}
	conv := x.s.scram.NewConversation()
	out, err := conv.Step(string(payload))
	if err != nil {
		return nil, errAuthFailed()
	}
	x.c.auth.conv = conv
	return saslReply(out, false), nil
}

func cmdSaslContinue(x *cmdCtx) (*Doc, error) {
	conv := x.c.auth.conv
	if conv == nil {
		return nil, newErr(codeBadValue, "No SASL session state found")
	}
	payload, ok := binaryData(x.body.Get("payload"))
	if !ok {
		return nil, errBadValue("saslContinue needs a binary payload")
	}
	out, err := conv.Step(string(payload))
	if err != nil || !conv.Valid() {
		x.c.auth = authState{}
		return nil, errAuthFailed()
	}
	x.c.auth = authState{user: conv.Username()}
	return saslReply(out, true), nil
}

// cmdAuthenticate refuses the legacy mechanisms (MONGODB-X509 and the
// retired MONGODB-CR): the emulator has no such users.
func cmdAuthenticate(x *cmdCtx) (*Doc, error) {
	if x.s.scram == nil {
		return nil, errNoUsers()
	}
	return nil, errAuthFailed()
}

func saslReply(payload string, done bool) *Doc {
	return docOf("conversationId", vInt32(1), "done", done,
		"payload", Val{T: tBinary, B: binPayload(0, []byte(payload))}, "ok", 1.0)
}

// binaryData returns the bytes of a BSON binary value.
func binaryData(v Val) ([]byte, bool) {
	if v.T != tBinary {
		return nil, false
	}
	_, data, ok := v.core().BinaryOK()
	return data, ok
}
