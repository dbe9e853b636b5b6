package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"roomd/rooms"
	"roomd/rooms/admin"
	"roomd/wsedge"
	"roomd/wsedge/token"
)

// config is everything roomd can be told at start.
type config struct {
	listen          string
	adminGRPC       string
	adminHTTP       string
	autoCreate      bool
	maxMessageBytes int64
	maxQueueBytes   int
	pingInterval    time.Duration
	pongTimeout     time.Duration
	writeTimeout    time.Duration
	shutdownTimeout time.Duration
	logLevel        string

	// Client access and limits
	jwtSecret         string
	jwtPublicKey      string
	allowedOrigins    string
	maxConns          int
	maxConnsPerIP     int
	maxRooms          int
	maxRoomsPerIP     int
	maxRoomsPerUser   int
	maxClientsPerRoom int
	messageRate       float64
	messageBurst      int
	readHeaderTimeout time.Duration

	// Behind proxies (wsedge/clientaddr.go, wsedge/proxyproto.go)
	trustedProxies string
	proxyProtocol  bool

	// Admin security (security.go)
	adminToken     string
	adminTokenFile string
	adminInsecure  bool
	adminMaxCalls  int
	maxWatchers    int
	tlsCert        string
	tlsKey         string

	// Client protocol
	historySize         int
	historyBytesPerRoom int64
	historyBytes        int64
	maxRoomsPerConn     int

	cluster clusterConfig // cluster.go
	ops     opsConfig     // operate.go
}

// envPrefix names each flag's environment variable: -max-queue-bytes is
// ROOMD_MAX_QUEUE_BYTES. A flag on the command line wins over the variable.
const envPrefix = "ROOMD_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// errVersion is parseConfig's answer to -version, after printing it.
var errVersion = errors.New("roomd: -version asked")

// parseConfig reads flags from args and, for flags not given there, from
// the environment through getenv.
// Asked for help (-h), it writes the usage to stdout and returns
// flag.ErrHelp; asked for -version, it writes the version line to stdout
// and returns errVersion. A mistake is only returned, for the caller to
// print as one line: the flag package's own report and usage would bury it.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	var cfg config
	var showVersion bool
	fs := flag.NewFlagSet("roomd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.listen, "listen", ":8080", "public HTTP/WebSocket address (GET /ws/{room_id})")
	fs.StringVar(&cfg.adminGRPC, "admin-grpc", "127.0.0.1:9090", "admin gRPC address")
	fs.StringVar(&cfg.adminHTTP, "admin-http", "127.0.0.1:9091", "admin REST gateway address (also /healthz and /openapi.json)")
	fs.BoolVar(&cfg.autoCreate, "auto-create", true, "a client joining a missing room creates it; when false the upgrade is refused with 404")
	fs.Int64Var(&cfg.maxMessageBytes, "max-message-bytes", rooms.DefaultMaxMessageBytes, "largest message a client may send; a bigger one closes it with 1009")
	fs.IntVar(&cfg.maxQueueBytes, "max-queue-bytes", rooms.DefaultMaxQueueBytes, "bound of each client's send queue; a client over it is closed with 4002")
	fs.DurationVar(&cfg.pingInterval, "ping-interval", wsedge.DefaultPingInterval, "how often the server pings each client")
	fs.DurationVar(&cfg.pongTimeout, "pong-timeout", wsedge.DefaultPongTimeout, "a client silent for ping-interval+pong-timeout is dropped; a message must be whole within pong-timeout of its first frame (1008 beyond)")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", wsedge.DefaultWriteTimeout, "bound on every socket write; a client slower than that is closed with 4002")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long clients get to finish their close handshake")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	// Client access and limits
	fs.StringVar(&cfg.jwtSecret, "jwt-secret", "", "HS256 secret (32+ bytes) client tokens are signed with; with it or -jwt-public-key every client needs ?token=")
	fs.StringVar(&cfg.jwtPublicKey, "jwt-public-key", "", "PEM file with the RSA or P-256 public key of RS256/ES256 client tokens")
	fs.StringVar(&cfg.allowedOrigins, "allowed-origins", "", "comma-separated page origins that may connect besides pages of roomd's own host, which always may: scheme://host[:port] (https://app.example.com), https://*.example.com, or * for any page")
	fs.IntVar(&cfg.maxConns, "max-conns", 0, "most sockets open on -listen at once, upgraded or not (beyond: a bare 503, closed); 0: the open-file limit less 256")
	fs.IntVar(&cfg.maxConnsPerIP, "max-conns-per-ip", 1000, "most sockets open on -listen from one remote IP (beyond: a bare 429, closed); 0: unlimited")
	fs.IntVar(&cfg.maxRooms, "max-rooms", 100000, "most rooms at once; 0: unlimited")
	fs.IntVar(&cfg.maxRoomsPerIP, "max-rooms-per-ip", 1000, "rooms the clients of one remote IP may have made by joining that still exist (429, room_quota beyond); 0: unlimited")
	fs.IntVar(&cfg.maxRoomsPerUser, "max-rooms-per-user", 1000, "with client tokens, the same per user (token sub); 0: unlimited")
	fs.IntVar(&cfg.maxClientsPerRoom, "max-clients-per-room", 50000, "cap on every room's members, whatever its max_clients; 0: no cap")
	fs.Float64Var(&cfg.messageRate, "max-message-rate", 100, "messages (client protocol: requests) per second a client may send on average (1008 beyond); a join, leave or member page costs one more per 100 members it reaches; 0: unlimited")
	fs.IntVar(&cfg.messageBurst, "max-message-burst", 200, "messages a client may send at once above the rate")
	// Client protocol
	fs.IntVar(&cfg.historySize, "history-size", 100, "messages each room keeps for client protocol connections resuming after a reconnect (rooms may set their own)")
	fs.Int64Var(&cfg.historyBytesPerRoom, "history-bytes-per-room", rooms.DefaultMaxRoomHistoryBytes, "bytes of messages each room keeps at most, whatever -history-size; the oldest go first, and a resume from before them is a gap")
	fs.Int64Var(&cfg.historyBytes, "history-bytes", rooms.DefaultMaxHistoryBytes, "bytes of messages all rooms keep together; when spent, a room drops its own oldest to keep a new one, or keeps none")
	fs.IntVar(&cfg.maxRoomsPerConn, "max-rooms-per-conn", 100, "rooms one client protocol connection may be in at once; 0: unlimited")
	fs.StringVar(&cfg.trustedProxies, "trusted-proxies", "", "comma-separated CIDR prefixes or IPs of the proxies in front of -listen (10.0.0.0/8,192.0.2.7): from them only, the client is the rightmost address of X-Forwarded-For not in the list, for -max-conns-per-ip, -max-rooms-per-ip, logs and ListClients")
	fs.BoolVar(&cfg.proxyProtocol, "proxy-protocol", false, "every socket on -listen comes from a -trusted-proxies address and starts with a PROXY protocol header (v1 or v2) naming the client; others are closed")
	fs.DurationVar(&cfg.readHeaderTimeout, "read-header-timeout", 5*time.Second, "a socket on -listen that has not sent a whole request by then, from accept or from its last response, is cut off (a TLS handshake gets as long again, before it); on the admin listeners, request headers only")
	// Admin security
	fs.StringVar(&cfg.adminToken, "admin-token", "", "bearer token every admin gRPC and REST call needs (authorization: Bearer TOKEN); health stays open")
	fs.StringVar(&cfg.adminTokenFile, "admin-token-file", "", "file holding the admin token (surrounding whitespace trimmed); instead of -admin-token")
	fs.BoolVar(&cfg.adminInsecure, "admin-insecure", false, "allow admin listeners on non-loopback addresses without a token")
	fs.IntVar(&cfg.maxWatchers, "max-watchers", rooms.DefaultMaxWatchers, "WatchRoom streams open at once (RESOURCE_EXHAUSTED beyond); each holds at most 1 MiB of events its reader has not taken")
	fs.IntVar(&cfg.adminMaxCalls, "admin-max-calls", admin.DefaultMaxConcurrentCalls, "admin calls in progress at once, gRPC and REST each (RESOURCE_EXHAUSTED, HTTP 429 beyond); streams (WatchRoom) do not count")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate (chain) file; with -tls-key every listener serves TLS (wss://, https://, gRPC over TLS)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key file of -tls-cert")
	cfg.cluster.register(fs)
	cfg.ops.register(fs)
	fs.BoolVar(&showVersion, versionFlag, false, "print roomd's version and the Go version it was built with, and exit (command line only: no "+envName(versionFlag)+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: roomd [flags]\n\nEvery flag but -version can also be set by an environment variable: -max-queue-bytes is %s.\n\n", envName("max-queue-bytes"))
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), exitCodesHelp)
	}
	if wantsHelp(args) {
		fs.SetOutput(stdout)
		fs.Usage()
		return cfg, flag.ErrHelp
	}
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("%v (roomd -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return cfg, unexpectedArguments(fs, args)
	}
	if showVersion {
		fmt.Fprintln(stdout, versionLine())
		return cfg, errVersion
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if given[f.Name] || f.Name == versionFlag || v == "" || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	return cfg, cfg.validate()
}

// versionFlag is the one flag without an environment variable: deploy
// tools set names such as ROOMD_VERSION, often to a version string, and one
// left in a service's environment must not stop roomd from starting as a
// bad boolean.
const versionFlag = "version"

// versionLine is what -version prints: roomd's version (set at build time
// with -ldflags "-X roomd/rooms/admin.version=...", or from the module's
// build info), and the Go release and platform it was built for.
func versionLine() string {
	return fmt.Sprintf("roomd %s %s %s/%s", admin.BuildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func (cfg config) validate() error {
	switch {
	case cfg.maxMessageBytes <= 0:
		return fmt.Errorf("-max-message-bytes must be positive, got %d", cfg.maxMessageBytes)
	case cfg.maxQueueBytes <= 0:
		return fmt.Errorf("-max-queue-bytes must be positive, got %d", cfg.maxQueueBytes)
	case cfg.pingInterval <= 0, cfg.pongTimeout <= 0, cfg.writeTimeout <= 0, cfg.shutdownTimeout <= 0, cfg.readHeaderTimeout <= 0:
		return fmt.Errorf("-ping-interval, -pong-timeout, -write-timeout, -shutdown-timeout and -read-header-timeout must be positive")
	case cfg.historySize < 0 || cfg.historySize > rooms.MaxHistorySize:
		return fmt.Errorf("-history-size must be 0 to %d, got %d", rooms.MaxHistorySize, cfg.historySize)
	case cfg.adminMaxCalls < 1, cfg.maxWatchers < 1:
		return fmt.Errorf("-admin-max-calls and -max-watchers must be at least 1")
	case cfg.historyBytesPerRoom <= 0, cfg.historyBytes <= 0:
		return fmt.Errorf("-history-bytes-per-room and -history-bytes must be positive (-history-size 0 keeps no history)")
	case cfg.maxRoomsPerConn < 0:
		return fmt.Errorf("-max-rooms-per-conn must not be negative")
	case cfg.maxConns < 0, cfg.maxConnsPerIP < 0, cfg.maxRooms < 0, cfg.maxRoomsPerIP < 0, cfg.maxRoomsPerUser < 0, cfg.maxClientsPerRoom < 0, cfg.messageRate < 0, cfg.messageBurst < 0:
		return fmt.Errorf("-max-conns, -max-conns-per-ip, -max-rooms, -max-rooms-per-ip, -max-rooms-per-user, -max-clients-per-room, -max-message-rate and -max-message-burst must not be negative")
	}
	if _, err := parseLogLevel(cfg.logLevel); err != nil {
		return err
	}
	for _, o := range cfg.origins() {
		if err := checkOrigin(o); err != nil {
			return err
		}
	}
	if err := cfg.validateProxies(); err != nil {
		return err
	}
	if err := cfg.validateAdminSecurity(); err != nil {
		return err
	}
	if err := cfg.ops.validate(); err != nil {
		return err
	}
	return cfg.cluster.validate()
}

// tokenVerifier loads the client token keys; nil means development mode.
func (cfg config) tokenVerifier() (*token.Verifier, error) {
	if cfg.jwtSecret == "" && cfg.jwtPublicKey == "" {
		return nil, nil
	}
	var publicKey []byte
	if cfg.jwtPublicKey != "" {
		var err error
		if publicKey, err = os.ReadFile(cfg.jwtPublicKey); err != nil {
			return nil, fmt.Errorf("-jwt-public-key: %w", err)
		}
	}
	v, err := token.NewVerifier([]byte(cfg.jwtSecret), publicKey)
	if err != nil {
		return nil, fmt.Errorf("-jwt-secret/-jwt-public-key: %w", err)
	}
	return v, nil
}

// origins splits -allowed-origins.
func (cfg config) origins() []string {
	var out []string
	for _, o := range strings.Split(cfg.allowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// proxies is -trusted-proxies, parsed (validate checked it).
func (cfg config) proxies() []netip.Prefix {
	prefixes, _ := wsedge.ParseTrustedProxies(cfg.trustedProxies)
	return prefixes
}

// validateProxies refuses a -trusted-proxies entry that is not an address
// or prefix, by name, and -proxy-protocol with nobody to trust: it would
// refuse every socket.
func (cfg config) validateProxies() error {
	prefixes, err := wsedge.ParseTrustedProxies(cfg.trustedProxies)
	if err != nil {
		return fmt.Errorf("-trusted-proxies: %w", err)
	}
	if cfg.proxyProtocol && len(prefixes) == 0 {
		return errors.New("-proxy-protocol needs -trusted-proxies: only the proxies named there may send a PROXY header")
	}
	return nil
}

// checkOrigin refuses an -allowed-origins entry that could never match a
// browser's Origin header (scheme://host[:port], nothing after it), so a
// typo such as "localhost:8000" fails at start instead of refusing every
// page at run time.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	hint := "an origin is scheme://host[:port], such as https://app.example.com or http://localhost:8000, or https://*.example.com, or *"
	u, err := url.Parse(o)
	switch {
	case err != nil, u.Scheme == "", u.Host == "", u.Opaque != "":
		return fmt.Errorf("-allowed-origins %q: %s", o, hint)
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("-allowed-origins %q: an origin has no path, query or user (browsers send scheme://host[:port] only)", o)
	case strings.Contains(strings.TrimPrefix(u.Host, "*."), "*"):
		return fmt.Errorf("-allowed-origins %q: a wildcard stands only for subdomains, as in https://*.example.com", o)
	}
	return nil
}

// wantsHelp reports whether the command line asks for the usage, which then
// goes to stdout: a person asked for it, and may want to page or grep it.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}

// unexpectedArguments explains leftover arguments. The usual cause is a
// boolean flag given its value after a space (-auto-create false), which
// the flag package takes as the flag alone followed by an argument.
func unexpectedArguments(fs *flag.FlagSet, args []string) error {
	rest := fs.Args()
	if i := len(args) - len(rest); i > 0 {
		name := strings.TrimLeft(args[i-1], "-")
		if f := fs.Lookup(name); f != nil && (rest[0] == "true" || rest[0] == "false") {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				return fmt.Errorf("unexpected arguments %q: boolean flags take their value after \"=\": -%s=%s", rest, name, rest[0])
			}
		}
	}
	return fmt.Errorf("unexpected arguments %q: roomd takes flags only (-h lists them)", rest)
}

// exitCodesHelp ends the usage: scripts and supervisors act on these.
const exitCodesHelp = `
Exit codes: 0 stopped by SIGINT or SIGTERM after a clean shutdown; 1 stopped because
a listener failed while serving; 2 could not start (a bad flag or variable, an
unreadable key or token file, an address in use); 3 a second SIGINT or SIGTERM
stopped it at once, during the drain. Errors are printed as "roomd: ..." on stderr.
`

// connectionLimit is -max-conns, or when 0 the open-file limit less room
// for the listeners, admin connections and files: refusing a client with
// 503 beats failing accept() for everyone. The public listener counts
// every socket from accept, so the reserve is really left: roomd itself
// holds about a dozen files (stdio, the poller, the three listeners), and
// a socket over the limit takes one for a moment before it is closed,
// which leaves some 240 for admin connections.
func (cfg config) connectionLimit() int {
	if cfg.maxConns > 0 {
		return cfg.maxConns
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 0
	}
	return max(int(lim.Cur)-256, 16)
}
