package mongoemu

import "fmt"

// cmdError is a command failure reported as {ok: 0, errmsg, code, codeName}.
type cmdError struct {
	Code   int32
	Msg    string
	Labels []string
	// dupPattern and dupValue describe a DuplicateKey error.
	dupPattern, dupValue *Doc
}

func (e *cmdError) Error() string { return fmt.Sprintf("%s (%d): %s", codeName(e.Code), e.Code, e.Msg) }

func newErr(code int32, format string, args ...any) *cmdError {
	return &cmdError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func errBadValue(format string, args ...any) *cmdError { return newErr(2, format, args...) }

// MongoDB error codes used by the emulator.
const (
	codeBadValue                  = 2
	codeFailedToParse             = 9
	codeTypeMismatch              = 14
	codeIllegalOperation          = 20
	codeNamespaceNotFound         = 26
	codeIndexNotFound             = 27
	codePathNotViable             = 28
	codeConflictingUpdateOps      = 40
	codeCursorNotFound            = 43
	codeNamespaceExists           = 48
	codeDollarPrefixedFieldName   = 52
	codeInvalidIdField            = 53
	codeNotSingleValueField       = 54
	codeCommandNotFound           = 59
	codeImmutableField            = 66
	codeInvalidOptions            = 72
	codeInvalidNamespace          = 73
	codeIndexOptionsConflict      = 85
	codeIndexKeySpecsConflict     = 86
	codeNoMatchingDocument        = 47
	codeWriteConflict             = 112
	codeNoSuchTransaction         = 251
	codeTransactionCommitted      = 256
	codeInvalidResumeToken        = 260
	codeChangeStreamFatal         = 280
	codeChangeStreamHistoryLost   = 286
	codeLocation40324             = 40324
	codeLocation40573             = 40573
	codeDuplicateKey              = 11000
	codeNoSuchKey                 = 4
	codeUnrecognizedPipelineStage = 40324
)

var codeNames = map[int32]string{
	1:     "InternalError",
	2:     "BadValue",
	4:     "NoSuchKey",
	6:     "HostUnreachable",
	7:     "HostNotFound",
	9:     "FailedToParse",
	11:    "UserNotFound",
	13:    "Unauthorized",
	18:    "AuthenticationFailed",
	14:    "TypeMismatch",
	20:    "IllegalOperation",
	24:    "LockTimeout",
	26:    "NamespaceNotFound",
	27:    "IndexNotFound",
	28:    "PathNotViable",
	40:    "ConflictingUpdateOperators",
	43:    "CursorNotFound",
	47:    "NoMatchingDocument",
	48:    "NamespaceExists",
	50:    "MaxTimeMSExpired",
	52:    "DollarPrefixedFieldName",
	53:    "InvalidIdField",
	54:    "NotSingleValueField",
	59:    "CommandNotFound",
	63:    "StaleShardVersion",
	66:    "ImmutableField",
	67:    "CannotCreateIndex",
	72:    "InvalidOptions",
	73:    "InvalidNamespace",
	85:    "IndexOptionsConflict",
	86:    "IndexKeySpecsConflict",
	89:    "NetworkTimeout",
	91:    "ShutdownInProgress",
	112:   "WriteConflict",
	133:   "FailedToSatisfyReadPreference",
	150:   "StaleEpoch",
	166:   "CommandNotSupportedOnView",
	189:   "PrimarySteppedDown",
	216:   "ElectionInProgress",
	234:   "RetryChangeStream",
	237:   "CursorKilled",
	251:   "NoSuchTransaction",
	256:   "TransactionCommitted",
	260:   "InvalidResumeToken",
	262:   "ExceededTimeLimit",
	263:   "OperationNotSupportedInTransaction",
	280:   "ChangeStreamFatalError",
	286:   "ChangeStreamHistoryLost",
	9001:  "SocketException",
	10107: "NotWritablePrimary",
	10334: "BSONObjectTooLarge",
	11000: "DuplicateKey",
	11600: "InterruptedAtShutdown",
	11602: "InterruptedDueToReplStateChange",
	13388: "StaleConfig",
	13435: "NotPrimaryNoSecondaryOk",
	13436: "NotPrimaryOrSecondary",
}

func codeName(code int32) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return fmt.Sprintf("Location%d", code)
}

// resumableChangeStreamCodes are the codes for which the server labels a
// change-stream getMore failure "ResumableChangeStreamError".
var resumableChangeStreamCodes = map[int32]bool{
	6: true, 7: true, 89: true, 91: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true, 63: true,
	150: true, 13388: true, 234: true, 133: true, 43: true,
}

// retryableWriteCodes are the codes labelled "RetryableWriteError" for
// retryable writes.
var retryableWriteCodes = map[int32]bool{
	6: true, 7: true, 89: true, 91: true, 189: true, 262: true, 9001: true,
	10107: true, 11600: true, 11602: true, 13435: true, 13436: true,
}

// stateChangeCodes are "not primary" and "node is recovering" errors; the
// server includes its topologyVersion in them so drivers can tell they are
// not news.
var stateChangeCodes = map[int32]bool{
	10107: true, 13435: true, 13436: true, 189: true, 91: true, 11600: true, 11602: true,
}

func errorReply(e *cmdError) *Doc {
	d := docOf("ok", 0.0, "errmsg", e.Msg, "code", e.Code, "codeName", codeName(e.Code))
	if stateChangeCodes[e.Code] {
		d.Append("topologyVersion", vDoc(docOf("processId", oidVal(processID), "counter", int64(0))))
	}
	if e.dupPattern != nil {
		d.Append("keyPattern", vDoc(e.dupPattern))
		d.Append("keyValue", vDoc(e.dupValue))
	}
	if len(e.Labels) > 0 {
		d.Append("errorLabels", toVal(e.Labels))
	}
	return d
}

// asCmdError converts any error to a command error.
func asCmdError(err error) *cmdError {
	if ce, ok := err.(*cmdError); ok {
		return ce
	}
	return newErr(1, "%v", err)
}
