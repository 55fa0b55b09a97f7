package hsmd

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// HardenProcess keeps the secrets this process holds (the domain key,
// unsealed keys, passwords in flight) out of places they could leak to:
// core files (RLIMIT_CORE 0), other processes of the same user and
// /proc/PID/mem (not dumpable, so no ptrace attach without CAP_SYS_PTRACE),
// and, when lockMemory is set and the process may lock all its memory,
// swap (mlockall). It must run before the domain key is unsealed. What it
// could not do is logged as a warning; none of it stops the node, since a
// memory lock limit is the host's choice.
//
// Call it from the daemon's main, never from a test binary: the race
// detector's shadow memory cannot be locked.
func HardenProcess(log *slog.Logger, lockMemory bool) {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		log.Warn("cannot turn core dumps off", "error", err.Error())
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		log.Warn("cannot make the process non-dumpable", "error", err.Error())
	}
	if !lockMemory {
		log.Info("memory is not locked (lock_memory = false): secrets may reach swap")
		return
	}
	// mlockall with MCL_FUTURE under a finite RLIMIT_MEMLOCK would make the
	// Go runtime's later allocations fail once the limit is reached, and
	// the process would die; lock only when the limit can be lifted.
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf); err != nil {
		var cur unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur) != nil || cur.Cur != unix.RLIM_INFINITY {
			log.Warn("memory is not locked: RLIMIT_MEMLOCK is finite and cannot be raised (give hsmd CAP_IPC_LOCK and CAP_SYS_RESOURCE, or LimitMEMLOCK=infinity); secrets may reach swap")
			return
		}
	}
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE); err != nil {
		log.Warn("memory is not locked: mlockall failed; secrets may reach swap", "error", err.Error())
		return
	}
	log.Info("memory locked: core dumps off, not dumpable, no swap")
}

// Harden runs HardenProcess with the node's log and its lock_memory
// setting.
func (c *Config) Harden() {
	log, _, closer, err := c.logger()
	if err != nil {
		return // LoadConfig checked the log file; Open reports it again
	}
	defer closer.Close()
	HardenProcess(log, c.LockMemory == nil || *c.LockMemory)
}
