package state

// BreakGlassActor is the Actor of an unlock_user command that no officer
// sent: `hsmd unlock-user` on a node's host, by someone who holds the
// cluster passphrase. Apply accepts this actor only for unlock_user, and
// only with a BreakGlass proof that checks out under the domain key, so
// a node certificate alone (which can put commands into the log) cannot
// use it. The '!' keeps it apart from every user name (ValidUserName).
const BreakGlassActor = "!break-glass"
