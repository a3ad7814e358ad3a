package envelope

// Subject returns the JetStream subject that carries one source collection's
// envelopes: "<prefix>.<db>.<collection>". Capture publishes to it and the
// applier's consumer filters on it, so it is part of the wire contract
// (envelope.md). Collection names may contain dots; the subject then has
// more tokens, which is harmless because subjects are only ever matched
// exactly.
func Subject(prefix, namespace string) string {
	return prefix + "." + namespace
}
