package main

// TLS certificates reload, on SIGHUP and when the files change, without
// touching connections already open; a bad new pair keeps the old one.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// certPair is a self-signed certificate for 127.0.0.1 and localhost, as
// PEM, told apart from others by its serial number and subject.
type certPair struct {
	serial    int64
	cert, key []byte
	parsed    *x509.Certificate
}

func newCertPair(t *testing.T, serial int64) certPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "roomd test " + big.NewInt(serial).String()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPair{serial: serial, parsed: parsed,
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
}

// install writes cert and key beside certFile and keyFile and renames them
// over, as certificate managers do.
func install(t *testing.T, certFile, keyFile string, cert, key []byte) {
	t.Helper()
	for _, f := range []struct {
		name string
		data []byte
	}{{certFile, cert}, {keyFile, key}} {
		tmp := f.name + ".new"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.name); err != nil {
			t.Fatal(err)
		}
	}
}

// certFiles installs pair in a new directory and returns the file names.
func certFiles(t *testing.T, pair certPair) (certFile, keyFile string) {
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install(t, certFile, keyFile, pair.cert, pair.key)
	return certFile, keyFile
}

func trusting(pairs ...certPair) *x509.CertPool {
	roots := x509.NewCertPool()
	for _, p := range pairs {
		roots.AddCert(p.parsed)
	}
	return roots
}

// servedSerial is the serial number of the certificate a new TLS
// connection to addr is shown; "" if it could not connect.
func servedSerial(addr string, roots *x509.CertPool) string {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return ""
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// waitForSerial polls until a new TLS connection is shown the certificate
// of serial, for up to 10 s (the files are checked every 2 s).
func waitForSerial(t *testing.T, addr string, roots *x509.CertPool, serial int64) {
	t.Helper()
	want := big.NewInt(serial).String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := servedSerial(addr, roots)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new TLS connection is shown serial %q, want %s", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialWSS opens a wss:// raw relay connection and checks the certificate
// it was shown.
func dialWSS(t *testing.T, public string, roots *x509.CertPool, serial int64) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 5 * time.Second}
	ws, _, err := d.Dial("wss://"+public+"/ws/lobby?user=ann", nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	if got := ws.NetConn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != serial {
		t.Fatalf("the wss connection was shown serial %d, want %d", got, serial)
	}
	return ws
}

// Files renamed over the old ones are picked up by new connections, while
// a connection made before keeps working; a bad pair changes nothing.
func TestTLSReloadWhenTheFilesChange(t *testing.T) {
	a, b, c := newCertPair(t, 101), newCertPair(t, 102), newCertPair(t, 103)
	certFile, keyFile := certFiles(t, a)
	s := startServer(t, "-tls-cert", certFile, "-tls-key", keyFile)
	roots := trusting(a, b, c)
	old := dialWSS(t, s.public, roots, a.serial)

	install(t, certFile, keyFile, b.cert, b.key)
	waitForSerial(t, s.public, roots, b.serial)
	send(t, old, websocket.TextMessage, "still here")
	expectFrame(t, old, websocket.TextMessage, "still here")
	if want := `msg="TLS certificate reloaded" trigger="files changed" subject="CN=roomd test 102" serial=102 not_after=`; !strings.Contains(s.logs.String(), want) {
		t.Errorf("no %s in the log", want)
	}

	// c's certificate with b's key: refused, logged, b stays.
	install(t, certFile, keyFile, c.cert, b.key)
	eventually(t, "the mismatched pair is logged", func() bool {
		return strings.Contains(s.logs.String(), `level=ERROR msg="TLS certificate not reloaded; keeping the one in use" trigger="files changed" error="tls: private key does not match public key" subject="CN=roomd test 102"`)
	})
	if got := servedSerial(s.public, roots); got != "102" {
		t.Errorf("after a bad pair a new connection is shown serial %q, want 102", got)
	}
	dialWSS(t, s.public, roots, b.serial)
	send(t, old, websocket.TextMessage, "and still")
	expectFrame(t, old, websocket.TextMessage, "and still")
}

// The reloader itself, checking the files every few milliseconds: a
// missing file, a half-written one, then a good pair.
func TestCertReloaderKeepsServingThroughBadFiles(t *testing.T) {
	a, b := newCertPair(t, 201), newCertPair(t, 202)
	certFile, keyFile := certFiles(t, a)
	logs := &syncBuffer{}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: slog.New(slog.NewTextHandler(logs, nil)), interval: 5 * time.Millisecond}
	if err := r.load(); err != nil {
		t.Fatal(err)
	}
	stop := r.watch()
	defer stop()
	serial := func() int64 {
		cert, _ := r.certificate(nil)
		return cert.Leaf.SerialNumber.Int64()
	}

	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the missing key is logged", func() bool { return strings.Contains(logs.String(), "key.pem: no such file or directory") })
	install(t, certFile, keyFile, b.cert, b.key[:len(b.key)/2])
	eventually(t, "the half key is logged", func() bool { return strings.Contains(logs.String(), "failed to find any PEM data in key input") })
	if got := serial(); got != a.serial {
		t.Fatalf("serving serial %d after bad files, want %d", got, a.serial)
	}
	install(t, certFile, keyFile, b.cert, b.key)
	eventually(t, "the good pair is served", func() bool { return serial() == b.serial })
	stop()
	if r.changed() {
		t.Error("the files changed after the good pair, by the reloader's account")
	}
}

// A real SIGHUP makes roomd load the pair again: a new connection is shown
// the new certificate, and the old connection carries on.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	a, b := newCertPair(t, 301), newCertPair(t, 302)
	certFile, keyFile := certFiles(t, a)
	p := startProcess(t, "-tls-cert", certFile, "-tls-key", keyFile)
	roots := trusting(a, b)
	old := dialWSS(t, p.public, roots, a.serial)

	install(t, certFile, keyFile, b.cert, b.key)
	p.signal(syscall.SIGHUP)
	eventually(t, "the SIGHUP reload is logged", func() bool {
		return strings.Contains(p.logs.String(), `msg="TLS certificate reloaded" trigger=SIGHUP subject="CN=roomd test 302" serial=302`)
	})
	waitForSerial(t, p.public, roots, b.serial)
	send(t, old, websocket.TextMessage, "after SIGHUP")
	expectFrame(t, old, websocket.TextMessage, "after SIGHUP")
	select {
	case <-p.exited:
		t.Fatal("roomd exited on SIGHUP")
	default:
	}
}
