package mongoemu

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time consumed by this process, so
// benchmarks can report throughput per CPU-second, which unlike wall-clock
// throughput does not depend on how loaded the machine is.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
