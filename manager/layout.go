package manager

import "path"

// Layout says where a thread's history comes from: its newest file's name
// (archiving keeps it) and where its own bytes start, after which base.
// Appends keep it; a revert (on either backend) or a purge's rewrite
// changes it, after which positions found in the history before name
// other bytes. Layouts compare with ==.
type Layout struct {
	head     string
	baseID   string
	baseSize int64
}

// LayoutOf returns the layout of t's history.
func LayoutOf(t Thread) Layout {
	return Layout{head: path.Base(t.RolloutPath), baseID: t.BaseID, baseSize: t.BaseSize}
}
