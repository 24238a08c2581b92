package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gwook/gwook/test/proc"
)

// TLSServer is a redis-server owned by one test that speaks only TLS, with
// a certificate for 127.0.0.1 and localhost signed by a certificate
// authority made for the test.
type TLSServer struct {
	// Addr is the server's address, 127.0.0.1:port.
	Addr string
	// CAFile is the PEM file of the authority that signed the server's
	// certificate.
	CAFile string
	// OtherCAFile is the PEM file of an authority that signed nothing the
	// server presents: trusting it alone must fail the handshake.
	OtherCAFile string
}

// URL returns the server's rediss URL for database 0.
func (s *TLSServer) URL() string { return "rediss://" + s.Addr + "/0" }

// StartTLS starts a redis-server that listens with TLS only on a free port
// of 127.0.0.1 and waits until it answers PING over TLS. The server is
// stopped when the test ends. The certificates live in the test's
// temporary directory.
func StartTLS(tb testing.TB) *TLSServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redistest: redis-server is not on PATH (%v); install Redis (e.g. apt-get install redis-server) to run this test", err)
	}
	dir := tb.TempDir()
	ca, caKey, err := writeCA(filepath.Join(dir, "ca.pem"), "gwook test CA")
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	if _, _, err := writeCA(filepath.Join(dir, "other-ca.pem"), "gwook other test CA"); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := writeServerCert(certFile, keyFile, ca, caKey); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	s := &TLSServer{CAFile: filepath.Join(dir, "ca.pem"), OtherCAFile: filepath.Join(dir, "other-ca.pem")}
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	var errs []error
	for range startAttempts {
		port, err := proc.FreePort()
		if err != nil {
			tb.Fatalf("redistest: finding a free port: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err := proc.Start("redis-server (TLS)", filepath.Join(dir, "redis-server.log"), nil, "redis-server",
			"--bind", "127.0.0.1", "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", s.CAFile,
			"--tls-auth-clients", "no", "--save", "", "--appendonly", "no")
		if err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		if err := waitTLSPing(p, s.Addr, pool); err != nil {
			_ = p.Stop(readyTimeout)
			errs = append(errs, fmt.Errorf("redis-server with TLS on %s: %w\n%s", s.Addr, err, p.LogTail(20)))
			continue
		}
		tb.Cleanup(func() {
			if err := p.Stop(readyTimeout); err != nil {
				tb.Errorf("redistest: %v", err)
			}
		})
		return s
	}
	tb.Fatalf("redistest: %v", errors.Join(errs...))
	return nil
}

// waitTLSPing polls PING over TLS until the server answers, it exits, or
// readyTimeout passes.
func waitTLSPing(p *proc.Process, addr string, roots *x509.CertPool) error {
	client := redis.NewClient(&redis.Options{
		Addr:       addr,
		TLSConfig:  &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxRetries: -1,
	})
	defer client.Close()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("exited while starting: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PING answer over TLS after %v: %w", readyTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeCA makes a self-signed certificate authority and writes its
// certificate to file as PEM.
func writeCA(file, name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, writePEM(file, "CERTIFICATE", der)
}

// writeServerCert makes a server certificate for 127.0.0.1 and localhost
// signed by ca and writes it and its key as PEM.
func writeServerCert(certFile, keyFile string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyFile, "PRIVATE KEY", keyDER)
}

func writePEM(file, kind string, der []byte) error {
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}
