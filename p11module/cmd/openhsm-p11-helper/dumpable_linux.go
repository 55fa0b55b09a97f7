package main

import "syscall"

// The helper may hold the client's credentials, handed over by a privileged
// parent: other processes of the same (unprivileged) user must not read
// them through /proc or ptrace. Non-dumpable makes /proc/<pid>/mem and
// /proc/<pid>/fd root's, as for a process that dropped privileges.
func init() {
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0)
}
