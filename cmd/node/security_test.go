package main

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pushcluster/pushcluster/pkg/node"
)

// API keys come repeated, comma-separated, from the environment and from
// a file, all at once; 0 on the command line turns a limit off.
func TestSecurityFlags(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	secret := filepath.Join(dir, "secret")
	os.WriteFile(keys, []byte("# rotation\nkey-from-file-0123456789\n\n"), 0o600)
	os.WriteFile(secret, []byte("s3cret-s3cret-s3cret-s3cret-s3cret\n"), 0o600)
	t.Setenv("PUSH_ALLOWED_ORIGINS", "https://a.example,https://b.example")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var cfg node.Config
	sec := addSecurityFlags(fs, &cfg)
	err := fs.Parse([]string{"-api-key", "key-one-0123456789,key-two-0123456789", "-api-key", "key-three-0123456789",
		"-api-key-file", keys, "-jwt-secret-file", secret, "-trusted-proxies", "10.0.0.0/8, 192.0.2.1",
		"-conn-publish-rate", "0", "-max-connections-per-ip", "0"})
	if err == nil {
		err = applyEnv(fs)
	}
	if err == nil {
		err = sec.apply(&cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"key-one-0123456789", "key-two-0123456789", "key-three-0123456789", "key-from-file-0123456789"}
	if !slices.Equal(cfg.Auth.APIKeys, wantKeys) {
		t.Errorf("API keys %q", cfg.Auth.APIKeys)
	}
	if string(cfg.Auth.Secret) != "s3cret-s3cret-s3cret-s3cret-s3cret" {
		t.Errorf("secret %q", cfg.Auth.Secret)
	}
	if len(cfg.Transport.TrustedProxies) != 2 || len(cfg.Transport.AllowedOrigins) != 2 {
		t.Errorf("proxies %v origins %v", cfg.Transport.TrustedProxies, cfg.Transport.AllowedOrigins)
	}
	if cfg.Transport.PublishRate != -1 || cfg.Transport.MaxConnectionsPerIP != -1 || cfg.KeyPublishRate <= 0 {
		t.Errorf("limits: conn rate %v, per IP %d, key rate %v", cfg.Transport.PublishRate, cfg.Transport.MaxConnectionsPerIP, cfg.KeyPublishRate)
	}
}

func TestSecurityFlagsRefuseBadProxies(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var cfg node.Config
	sec := addSecurityFlags(fs, &cfg)
	if err := fs.Parse([]string{"-trusted-proxies", "not-a-cidr"}); err != nil {
		t.Fatal(err)
	}
	if err := sec.apply(&cfg); err == nil {
		t.Error("a bad -trusted-proxies accepted")
	}
}

// The HS256 key is the secret file's text as it stands: base64 text, as
// the README makes it, is not decoded, so whoever mints tokens signs with
// the same 44 bytes.
func TestJWTSecretIsTheFilesText(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jwt.secret")
	text := "q2Vr1Q9dXk3Cj0S0m7m8bJ0k0Q6hXKc2l7V0bJm1F3E="
	os.WriteFile(file, []byte(" "+text+"\n"), 0o600)
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var cfg node.Config
	sec := addSecurityFlags(fs, &cfg)
	if err := fs.Parse([]string{"-jwt-secret-file", file}); err != nil {
		t.Fatal(err)
	}
	if err := sec.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	if string(cfg.Auth.Secret) != text {
		t.Errorf("secret %q, want the file's text %q", cfg.Auth.Secret, text)
	}
}
