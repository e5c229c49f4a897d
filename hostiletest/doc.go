// Package hostiletest attacks a real spoold binary on loopback the way a
// user's neighbour would (issue #14): a web page in the user's browser
// (cross-site requests, DNS rebinding), another local user (huge and slow
// bodies, odd bytes), and checks after every refused request that nothing
// was written. It has tests only; docs/SECURITY.md points at them by name.
package hostiletest
