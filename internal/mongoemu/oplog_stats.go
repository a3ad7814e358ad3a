package mongoemu

// OplogStats describes the retained oplog.
type OplogStats struct {
	// Entries is the number of retained entries.
	Entries int
	// Bytes is their accounted size: what Options.OplogMaxBytes bounds.
	Bytes int64
	// Discarded counts the entries truncation has discarded so far.
	Discarded int64
}

// OplogStats returns the retained oplog's size.
func (s *Server) OplogStats() OplogStats {
	o := s.oplog
	o.mu.Lock()
	defer o.mu.Unlock()
	return OplogStats{Entries: len(o.entries) - o.head, Bytes: o.bytes, Discarded: o.discarded}
}
