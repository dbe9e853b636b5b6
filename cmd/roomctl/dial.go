package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	roomdv1 "roomd/gen/roomd/v1"
)

// session is what a command runs with: the global flags, the process's
// streams and, once asked for, the connection to roomd.
type session struct {
	*globals
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	conn           *grpc.ClientConn
}

// client connects to roomd on first use (gentoken needs no server). The
// connection itself is made by the first call, so an address nobody
// serves shows there, as Unavailable.
func (s *session) client() (roomdv1.RoomServiceClient, error) {
	if s.conn == nil {
		opts, err := s.dialOptions()
		if err != nil {
			return nil, err
		}
		if s.conn, err = grpc.NewClient(s.addr, opts...); err != nil {
			return nil, usageErrorf("-addr %q: %v", s.addr, err)
		}
	}
	return roomdv1.NewRoomServiceClient(s.conn), nil
}

func (s *session) close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

func (s *session) dialOptions() ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if s.tlsCA != "" {
		pem, err := os.ReadFile(s.tlsCA)
		if err != nil {
			return nil, usageErrorf("-tls-ca: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("-tls-ca %s holds no PEM certificate", s.tlsCA)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// roomd bounds what it sends (a watched message is at most its
		// -max-message-bytes); refusing more here would only fail a
		// watch of a server configured for big messages.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	}
	token, err := s.adminToken()
	if err != nil {
		return nil, err
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(token)))
	}
	return opts, nil
}

// bearer sends roomd's admin token with every call, as roomd's admin API
// reads it: "authorization: Bearer <token>".
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false because roomd serves its admin API
// without TLS on loopback, where the token is no less private than a
// local file.
func (b bearer) RequireTransportSecurity() bool { return false }
