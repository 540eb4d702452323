package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
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

// client is a client of the pal service.
type client struct {
	base  string
	token string
	http  *http.Client
}

func (f *serverFlags) client() (*client, error) {
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
	return &client{base: strings.TrimRight(f.server, "/"), token: token, http: &http.Client{Timeout: 5 * time.Minute, Transport: transport}}, nil
}

// isLoopback reports whether a host is this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serviceError is an error answer of the service: its code and message.
type serviceError struct{ Code, Message string }

func (e *serviceError) Error() string { return e.Code + ": " + e.Message }

// do sends a request and decodes a JSON answer into out. An error answer
// comes back as an error that says the service's code and message.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, out any) error {
	answer, err := c.open(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer answer.Close()
	if err := json.NewDecoder(answer).Decode(out); err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return nil
}

// open sends a request and returns the answer's body, to be closed.
func (c *client) open(ctx context.Context, method, path string, query url.Values, body io.Reader) (io.ReadCloser, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error.Code == "" {
			return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return nil, &serviceError{Code: e.Error.Code, Message: e.Error.Message}
	}
	return resp.Body, nil
}

// remote asks the service named by --server for path, decoding the answer
// into out. It returns false when no --server was given.
func (f *serverFlags) remote(ctx context.Context, path string, query url.Values, out any) (bool, error) {
	if f.server == "" {
		return false, nil
	}
	c, err := f.client()
	if err != nil {
		return true, err
	}
	return true, c.do(ctx, http.MethodGet, path, query, nil, out)
}
