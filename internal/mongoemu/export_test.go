package mongoemu

// ProcessCPU exposes processCPU to the external test package.
var ProcessCPU = processCPU

// SessionCount returns how many sessions the server holds.
func SessionCount(s *Server) int {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	return len(s.sessions.sessions)
}
