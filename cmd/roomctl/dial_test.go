package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	roomdv1 "roomd/gen/roomd/v1"
)

func TestNodes(t *testing.T) {
	s := startRoomd(t)
	s.join(t, "lobby", "user=ann")
	s.clientID(t, "lobby", "ann")
	out := s.ok(t, "nodes")
	table := regexp.MustCompile(`^NAME +CLIENTS +PUBLIC +GRPC +REST +STARTED +HEARTBEAT +VERSION\n` +
		`local +1 +http://` + regexp.QuoteMeta(s.public) + ` +` + regexp.QuoteMeta(s.grpcAddr) + ` +127\.0\.0\.1:\d+ +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\S* +\S+ \S+ +\S.*\n$`)
	if !table.MatchString(out) {
		t.Fatalf("nodes printed\n%s", out)
	}
	var resp roomdv1.ListNodesResponse
	s.okJSON(t, &resp, "nodes")
	if len(resp.Nodes) != 1 || resp.Nodes[0].Name != "local" || resp.Nodes[0].AdminGrpcAddr != s.grpcAddr || resp.Nodes[0].ClientCount != 1 || resp.Partial {
		t.Fatalf("nodes -o json: %v", &resp)
	}
}

func TestAdminToken(t *testing.T) {
	const adminToken = "s3cret-admin-token"
	s := startRoomd(t, "-admin-token", adminToken)

	want(t, s.roomctl(t, "rooms", "list"), exitFailed,
		"roomctl: Unauthenticated: missing bearer token", "(give roomd's admin token with -token, -token-file or ROOMCTL_TOKEN)\n")
	want(t, s.roomctl(t, "rooms", "list", "-token", "wrong"), exitFailed, "roomctl: Unauthenticated: invalid bearer token")
	// Between the two streams, one line: nothing on stdout.
	if r := s.roomctl(t, "nodes", "-token", "wrong"); r.stdout != "" {
		t.Fatalf("a refused call printed on stdout:\n%v", r)
	}
	want(t, s.roomctl(t, "watch", "lobby", "-token", "wrong"), exitFailed, "roomctl: Unauthenticated: ")

	want(t, s.roomctl(t, "-token", adminToken, "nodes"), exitOK, "local ")
	want(t, s.with(invocation{env: map[string]string{"ROOMCTL_TOKEN": adminToken}}).run(t, "nodes"), exitOK, "local ")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, s.with(invocation{env: map[string]string{"ROOMCTL_TOKEN_FILE": file}}).run(t, "nodes"), exitOK, "local ")
	// A flag wins over a variable.
	want(t, s.with(invocation{env: map[string]string{"ROOMCTL_TOKEN": "wrong"}}).run(t, "nodes", "-token", adminToken), exitOK, "local ")
	want(t, s.roomctl(t, "nodes", "-token", adminToken, "-token-file", file), exitUsage, "roomctl: -token and -token-file (or their ROOMCTL_ variables) are both set; give one\n")
}

func TestUnreachable(t *testing.T) {
	t.Run("nothing listens", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		start := time.Now()
		want(t, offline(t, "-addr", addr, "rooms", "list"), exitUnreachable, "roomctl: Unavailable: ", "connection refused")
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("a refused connection took %v to report", took)
		}
	})

	t.Run("nothing answers", func(t *testing.T) {
		// Accepts, then says nothing: no answer within -timeout.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
			}
		}()
		start := time.Now()
		want(t, offline(t, "-addr", ln.Addr().String(), "-timeout", "300ms", "nodes"), exitUnreachable, "roomctl: DeadlineExceeded: ", "(no answer within -timeout)")
		if took := time.Since(start); took < 300*time.Millisecond || took > 3*time.Second {
			t.Fatalf("-timeout 300ms ended the call after %v", took)
		}
	})
}

func TestTLS(t *testing.T) {
	cert, key := selfSigned(t)
	s := startRoomd(t, "-tls-cert", cert, "-tls-key", key)

	want(t, s.roomctl(t, "nodes", "-tls-ca", cert), exitOK, "https://"+s.public)
	want(t, s.with(invocation{env: map[string]string{"ROOMCTL_TLS_CA": cert}}).run(t, "rooms", "list"), exitOK, "ROOM ")
	want(t, s.roomctl(t, "nodes"), exitUnreachable, "roomctl: Unavailable: ")
	want(t, s.roomctl(t, "nodes", "-tls-ca", key), exitUsage, "roomctl: -tls-ca "+key+" holds no PEM certificate\n")
	want(t, s.roomctl(t, "nodes", "-tls-ca", filepath.Join(t.TempDir(), "none.pem")), exitUsage, "roomctl: -tls-ca: open ")
}

// selfSigned writes a certificate for 127.0.0.1, its own CA, and its key.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "roomctl test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
