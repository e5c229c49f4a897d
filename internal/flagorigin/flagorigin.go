// Package flagorigin names where a command-line setting came from, for
// messages about a bad value: the flag when it was typed, the environment
// variable that gave its default when it was not. A bad SPOOL_SYNC is then
// not reported as a -sync nobody typed.
package flagorigin

import "flag"

// Namer returns a function that names the origin of flag name's value in
// fs, which must have been parsed: variable when the flag was not given
// and getenv(variable) is set, else prefix and name ("-sync", "--pg").
func Namer(fs *flag.FlagSet, prefix string, getenv func(string) string) func(name, variable string) string {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return func(name, variable string) string {
		if !given[name] && variable != "" && getenv(variable) != "" {
			return variable
		}
		return prefix + name
	}
}
