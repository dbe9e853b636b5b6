package main

import (
	"flag"
	"maps"
	"os"
	"strings"
	"time"
)

// globals are the flags every command takes: where roomd is, how to reach
// it, and how to print.
type globals struct {
	addr      string
	token     string
	tokenFile string
	tlsCA     string
	timeout   time.Duration
	output    string
}

// Output formats (-o).
const (
	outputTable = "table"
	outputJSON  = "json"
)

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", "127.0.0.1:9090", "roomd's admin gRPC address, host:port (roomd's -admin-grpc)")
	fs.StringVar(&g.token, "token", "", "roomd's admin token, sent as \"authorization: Bearer TOKEN\" (prefer ROOMCTL_TOKEN: flags show in ps)")
	fs.StringVar(&g.tokenFile, "token-file", "", "file holding the admin token, surrounding whitespace trimmed; instead of -token")
	fs.StringVar(&g.tlsCA, "tls-ca", "", "PEM file of the CA that signed roomd's certificate; given, roomctl speaks TLS (a system bundle such as /etc/ssl/certs/ca-certificates.crt works for a public CA)")
	fs.DurationVar(&g.timeout, "timeout", 10*time.Second, "bound on each command's calls, connecting included; a watch has none")
	fs.StringVar(&g.output, "o", outputTable, "output: table (for people) or json (for scripts: protojson, as the REST API shows it)")
}

// envPrefix names each global flag's environment variable: -tls-ca is
// ROOMCTL_TLS_CA. A flag on the command line wins over its variable.
const envPrefix = "ROOMCTL_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// noEnv is the global flag without a variable: a format set in the
// environment would change what scripts read without them saying so.
const noEnv = "o"

// fromEnv sets each global flag given neither before the command (top)
// nor after it (cmd) from its environment variable, then checks them all.
func (g *globals) fromEnv(getenv func(string) string, top, cmd *flag.FlagSet) error {
	set := given(top)
	maps.Copy(set, given(cmd))
	var err error
	top.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if set[f.Name] || f.Name == noEnv || v == "" || err != nil {
			return
		}
		if e := f.Value.Set(v); e != nil {
			err = usageErrorf("%s=%q: %v", envName(f.Name), v, e)
		}
	})
	if err != nil {
		return err
	}
	return g.check()
}

func (g *globals) check() error {
	switch {
	case g.output != outputTable && g.output != outputJSON:
		return usageErrorf("-o %q: want table or json", g.output)
	case g.timeout <= 0:
		return usageErrorf("-timeout must be positive, got %v", g.timeout)
	case g.token != "" && g.tokenFile != "":
		return usageErrorf("-token and -token-file (or their ROOMCTL_ variables) are both set; give one")
	}
	return nil
}

// adminToken is -token, or the trimmed contents of -token-file (trimmed as
// roomd trims its -admin-token-file, so one file serves both).
func (g *globals) adminToken() (string, error) {
	if g.tokenFile == "" {
		return g.token, nil
	}
	b, err := os.ReadFile(g.tokenFile)
	if err != nil {
		return "", usageErrorf("-token-file: %v", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", usageErrorf("-token-file %s is empty", g.tokenFile)
	}
	return tok, nil
}

// parseInterspersed parses flags wherever they stand among the arguments,
// as people type them (roomctl rooms create lobby -max-clients 50), and
// returns the other arguments in order; the flag package alone stops at
// the first of them. After "--" everything is an argument: text that
// starts with "-".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// flagNames are the flags registered in fs so far: a command's own, told
// apart from the global ones in its usage.
func flagNames(fs *flag.FlagSet) map[string]bool {
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[f.Name] = true })
	return names
}

// given are the flags set on the command line, for a command to tell an
// absent flag (the server's default: the proto's optional fields) from one
// given its zero value.
func given(fs *flag.FlagSet) map[string]bool {
	names := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { names[f.Name] = true })
	return names
}
