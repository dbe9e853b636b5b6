package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"strings"

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
// -tls-cert.
func (cfg config) loadTLS() (*tls.Config, error) {
	if cfg.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
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
