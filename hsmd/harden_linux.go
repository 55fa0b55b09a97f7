package hsmd

import (
	"log/slog"

	"github.com/openhsm/openhsm/seal"
	"golang.org/x/sys/unix"
)

// HardenProcess keeps the secrets this process holds (the domain key,
// unsealed keys, passwords in flight) out of places they could leak to:
// core files (RLIMIT_CORE 0) and other processes of the same user and
// /proc/PID/mem (not dumpable, so no ptrace attach without
// CAP_SYS_PTRACE). It must run before the domain key is unsealed. What it
// could not do is logged as a warning.
//
// The whole process is not locked in memory (mlockall): with MCL_FUTURE
// the Go runtime's heap would be locked as it grows, and the scavenger
// could not give memory back, which fights the daemon's memory limit. The
// domain key and the keys derived from it are locked instead
// (lockSealer): a few pages, within even an unprivileged RLIMIT_MEMLOCK.
func HardenProcess(log *slog.Logger) {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		log.Warn("cannot turn core dumps off", "error", err.Error())
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("cannot make the process non-dumpable", "error", err.Error())
	}
}

// Harden runs HardenProcess with the node's log.
func (c *Config) Harden() {
	log, _, closer, err := c.logger()
	if err != nil {
		return // LoadConfig checked the log file; Open reports it again
	}
	defer closer.Close()
	HardenProcess(log)
}

// lockSealer locks the pages of the domain key and its derived keys in
// memory (mlock; Go's heap does not move objects), unless lock_memory is
// false. A failure is a warning: the host's limit is its choice.
func (c *Config) lockSealer(log *slog.Logger, s *seal.Sealer) {
	if c.LockMemory != nil && !*c.LockMemory {
		log.Info("the domain key is not locked in memory (lock_memory = false): it may reach swap")
		return
	}
	if err := s.Lock(unix.Mlock); err != nil {
		log.Warn("the domain key could not be locked in memory; it may reach swap (raise RLIMIT_MEMLOCK or give hsmd CAP_IPC_LOCK)", "error", err.Error())
	}
}
