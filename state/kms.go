package state

// kmsApply holds the KMS ops' apply functions; applyTable takes them in.
var kmsApply = map[Op]applyFunc{}

// KMSCommand is the payload of a KMS command.
type KMSCommand struct{}
