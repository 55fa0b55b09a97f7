package api

// The Raft states a node reports: InfoResponse.state, ClusterStatus and the
// state label of the openhsm_raft_state metric. The cluster package gives
// them, the client reads StateLeader to send writes to the leader, and
// hsmd reads StateJoining before it adds a node.
const (
	StateLeader    = "leader"
	StateFollower  = "follower"
	StateCandidate = "candidate"
	StateJoining   = "joining" // a follower that is not in any configuration yet
	StateShutdown  = "shutdown"
)

// States lists every state, in the order the metric gives them.
var States = []string{StateLeader, StateFollower, StateCandidate, StateJoining, StateShutdown}
