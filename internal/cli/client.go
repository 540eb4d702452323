package cli

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/palproject/pal/internal/api"
)

// serverFlags are the flags of the commands that ask a running service.
type serverFlags struct {
	server string
	token  string
	ca     string
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "ask the pal service at this URL instead of reading a log")
	fs.StringVar(&f.token, "token", "", "the bearer token for --server (default: $PAL_TOKEN)")
	fs.StringVar(&f.ca, "ca", "", "trust the certificate authority in this PEM file for --server (a private CA, or a self-signed certificate)")
}

// client is the typed client of the service that --server names, with
// --token (or $PAL_TOKEN) and --ca.
func (f *serverFlags) client() (*api.Client, error) {
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not an http:// or https:// URL", f.server)
	}
	token := f.token
	if token == "" {
		token = os.Getenv("PAL_TOKEN")
	}
	if token == "" {
		return nil, usagef("--token is required with --server (or set PAL_TOKEN)")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return nil, usagef("--server %s is plain http://: a token is sent only over https://, or to this machine", f.server)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, usagef("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--ca %s holds no PEM certificate", f.ca)
		}
		transport.TLSClientConfig.RootCAs = pool
	}
	return api.NewClient(strings.TrimRight(f.server, "/"), token, &http.Client{Timeout: 5 * time.Minute, Transport: transport}), nil
}

// isLoopback reports whether a host is this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// asks reports whether --server names a service to ask.
func (f *serverFlags) asks() bool { return f.server != "" }
