package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"roomd/rooms/admin"
)

// validateAdminSecurity checks the admin security flags against each other
// and refuses an admin listener reachable from other machines without a
// token: it would let anyone read and control every room.
func (cfg config) validateAdminSecurity() error {
	if cfg.adminToken != "" && cfg.adminTokenFile != "" {
		return errors.New("-admin-token and -admin-token-file are both set: use one")
	}
	if cfg.adminToken != "" {
		if err := checkAdminToken("-admin-token", cfg.adminToken); err != nil {
			return err
		}
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together: set both or neither")
	}
	if cfg.adminToken != "" || cfg.adminTokenFile != "" || cfg.adminInsecure {
		return nil
	}
	for _, l := range []struct{ flag, addr string }{{"admin-grpc", cfg.adminGRPC}, {"admin-http", cfg.adminHTTP}} {
		if !isLoopbackAddr(l.addr) {
			return fmt.Errorf("-%s %q is not a loopback address and the admin API has no token, so anyone who can reach it could control every room: "+
				"set -admin-token or -admin-token-file, listen on 127.0.0.1, or pass -admin-insecure to accept the risk", l.flag, l.addr)
		}
	}
	return nil
}

// isLoopbackAddr reports whether a listen address (host:port) only accepts
// connections from this machine. An empty host, 0.0.0.0 and [::] listen on
// every interface; a host name other than localhost may resolve to anything.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// checkAdminToken requires what can travel in an HTTP header and in gRPC
// metadata after "Bearer ": visible ASCII, no spaces.
func checkAdminToken(source, token string) error {
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return fmt.Errorf("%s: the token must be visible ASCII without spaces (it travels in an HTTP header); byte %d is not", source, i+1)
		}
	}
	return nil
}

// loadAdminToken returns the admin token from -admin-token or from the file
// -admin-token-file names, or "" when there is none.
func (cfg config) loadAdminToken() (string, error) {
	if cfg.adminTokenFile == "" {
		return cfg.adminToken, nil
	}
	data, err := os.ReadFile(cfg.adminTokenFile)
	if err != nil {
		return "", fmt.Errorf("-admin-token-file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("-admin-token-file %s is empty", cfg.adminTokenFile)
	}
	if err := checkAdminToken("-admin-token-file "+cfg.adminTokenFile, token); err != nil {
		return "", err
	}
	return token, nil
}

// loadTLS returns the TLS settings every listener shares, or nil without
// -tls-cert. Their certificate comes from a certReloader, which loads the
// pair again on SIGHUP and when either file changes until stop is called.
func (cfg config) loadTLS(log *slog.Logger) (_ *tls.Config, stop func(), err error) {
	if cfg.tlsCert == "" {
		return nil, func() {}, nil
	}
	r := &certReloader{certFile: cfg.tlsCert, keyFile: cfg.tlsKey, log: log, interval: certPollInterval}
	if err := r.load(); err != nil {
		return nil, nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	r.logLoaded("TLS certificate loaded", "start")
	return &tls.Config{GetCertificate: r.certificate, MinVersion: tls.VersionTLS12}, r.watch(), nil
}

// certPollInterval is how often the certificate files are checked for a
// change.
const certPollInterval = 2 * time.Second

// certReloader holds the certificate every new TLS handshake presents.
// Certificate managers (certbot, cert-manager, a Kubernetes secret) write
// new files, or rename new files over the old ones, and some send SIGHUP:
// either makes it load the pair again. A pair that does not load (a file
// half written, a key that does not match) is logged and the certificate
// in use stays; connections already open keep the one they shook hands
// with.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	interval          time.Duration // how often the files are checked; tests shorten it

	cert atomic.Pointer[tls.Certificate]
	// seen is what the files were (identity, size, time) at the last
	// load, ok or not; only the watch goroutine touches it after load.
	seen [2]os.FileInfo
}

func (r *certReloader) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// load reads the pair and, if it is good, serves it from now on. The
// files are looked at before they are read, so that a change made while
// reading is seen on the next check.
func (r *certReloader) load() error {
	r.seen = r.stat()
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
	}
	r.cert.Store(&cert)
	return nil
}

func (r *certReloader) stat() [2]os.FileInfo {
	var infos [2]os.FileInfo
	for i, name := range []string{r.certFile, r.keyFile} {
		infos[i], _ = os.Stat(name) // a missing file is a change, and load says why
	}
	return infos
}

// changed reports whether either file is not what load last saw: another
// file renamed over it, or new contents.
func (r *certReloader) changed() bool {
	now := r.stat()
	for i := range now {
		was, is := r.seen[i], now[i]
		switch {
		case was == nil || is == nil:
			if was != is {
				return true
			}
		case !os.SameFile(was, is) || was.Size() != is.Size() || !was.ModTime().Equal(is.ModTime()):
			return true
		}
	}
	return false
}

func (r *certReloader) reload(trigger string) {
	if err := r.load(); err != nil {
		cur := r.cert.Load().Leaf
		r.log.Error("TLS certificate not reloaded; keeping the one in use", "trigger", trigger, "error", err,
			"subject", cur.Subject.String(), "serial", cur.SerialNumber.String(), "not_after", cur.NotAfter)
		return
	}
	r.logLoaded("TLS certificate reloaded", trigger)
}

func (r *certReloader) logLoaded(msg, trigger string) {
	leaf := r.cert.Load().Leaf
	r.log.Info(msg, "trigger", trigger, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(),
		"not_after", leaf.NotAfter, "cert", r.certFile)
}

// watch reloads the pair on SIGHUP and when the files change, until the
// returned stop is called; stop returns once the goroutine has, and may be
// called again.
func (r *certReloader) watch() (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(r.interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-hup:
				r.reload("SIGHUP")
			case <-tick.C:
				if r.changed() {
					r.reload("files changed")
				}
			}
		}
	}()
	return sync.OnceFunc(func() {
		signal.Stop(hup)
		close(done)
		<-stopped
	})
}

// ALPN protocols of each listener under TLS. The public one stays on
// HTTP/1.1: a WebSocket upgrade needs it (HTTP/2 has no Upgrade). gRPC
// needs h2.
var (
	publicProtocols    = []string{"http/1.1"}
	adminHTTPProtocols = []string{"h2", "http/1.1"}
	grpcProtocols      = []string{"h2"}
)

// withTLS makes ln serve TLS with base and the ALPN protocols; with a nil
// base it returns ln as is. The handshake runs in the server's connection
// goroutine, under the server's own header timeout.
func withTLS(ln net.Listener, base *tls.Config, protocols []string) net.Listener {
	if base == nil {
		return ln
	}
	c := base.Clone()
	c.NextProtos = protocols
	return tls.NewListener(ln, c)
}

// scheme returns secure when TLS is on, plain otherwise.
func scheme(tlsConfig *tls.Config, plain, secure string) string {
	if tlsConfig != nil {
		return secure
	}
	return plain
}

// adminMaxRecvBytes bounds one admin gRPC request: the default 4 MiB, or
// more when -max-message-bytes asks for bigger messages, so that the
// payload check (not the transport) refuses an oversized one, by name.
func adminMaxRecvBytes(maxMessageBytes int64) int {
	const envelope = 64 << 10 // room ids, exclusions and protobuf framing
	return int(min(max(admin.DefaultMaxRecvMsgBytes, min(maxMessageBytes, math.MaxInt32)+envelope), math.MaxInt32))
}
