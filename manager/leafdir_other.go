//go:build !linux

package manager

import "io/fs"

// noSubdirs reports false: elsewhere a directory's link count does not
// reliably count its subdirectories (APFS counts its entries).
func noSubdirs(fs.FileInfo) bool { return false }
