//go:build unix

package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pushcluster/pushcluster/internal/rediscluster"
	"github.com/pushcluster/pushcluster/internal/testredis"
	"github.com/pushcluster/pushcluster/pkg/node"
)

// A node reaches a Redis over TLS, verifying its certificate against the
// CA it is given, as an ACL user that may use only the node's own keys and
// pub/sub channels, and delivers as usual.
func TestRedisTLSAndACLUser(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := ln.Addr().String()
	ln.Close()
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	prefix := testredis.Prefix(t)
	srv, stop, err := rediscluster.StartServer(context.Background(), fmt.Sprintf(
		"tls-port %s\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients no\n"+
			"user pushnode on >s3cret ~%s* &__keyspace@0__:%[5]s* +@all\n", tlsPort, cert, key, ca, prefix))
	if err != nil {
		t.Skipf("no redis-server with TLS: %v", err)
	}
	t.Cleanup(stop)
	admin := srv.Client()
	t.Cleanup(func() { admin.Close() })
	c := &cluster{t: t, prefix: prefix, rdb: admin, redisURL: "rediss://" + tlsAddr + "/0",
		redis: node.RedisConfig{Username: "pushnode", Password: "s3cret", TLSCA: ca}}
	a := c.start("a")
	waitShardsNotified(t, a, 1)
	s := openSSE(t, sseURL(a, "secure"), "")
	s.waitWelcome()
	want := []string{c.xaddSeq("secure", 0), c.xaddSeq("secure", 1)}
	equalStrings(t, "SSE over TLS", s.waitData(2), want)
	// The user the node needs is this narrow: its prefix's keys and their
	// keyspace channels.
	u := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "pushnode", Password: "s3cret"})
	defer u.Close()
	if err := u.Set(context.Background(), "elsewhere", "x", 0).Err(); err == nil {
		t.Error("the ACL user wrote outside its prefix")
	}
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 it signed.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("redis.pem", "CERTIFICATE", srvDER), write("redis.key", "EC PRIVATE KEY", keyDER)
}
