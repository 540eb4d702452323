package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"time"
)

// Resolver finds the addresses of a host name: net.DefaultResolver, or a
// test's.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// forbiddenAddr says why a webhook may not post to an address, or "" when
// it may: a webhook reaches the partner's receiver on the internet, never
// the service's own machine or network, nor a cloud's metadata service.
func forbiddenAddr(a netip.Addr) string {
	a = a.Unmap()
	// An IPv6 address that embeds an IPv4 one (NAT64's well-known prefix,
	// 6to4) reaches that one: it is judged by it.
	if a.Is6() {
		b := a.As16()
		switch {
		case wellKnownNAT64.Contains(a):
			if why := forbiddenAddr(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
				return why + ", through NAT64"
			}
		case sixToFour.Contains(a):
			if why := forbiddenAddr(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
				return why + ", through 6to4"
			}
		}
	}
	for _, r := range specialPurpose {
		if r.prefix.Contains(a) {
			if slices.ContainsFunc(r.except, func(p netip.Prefix) bool { return p.Contains(a) }) {
				break
			}
			return r.why
		}
	}
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsUnspecified():
		return "an unspecified address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	case a.IsPrivate():
		return "a private address"
	}
	return ""
}

// The prefixes whose IPv6 addresses embed an IPv4 address.
var (
	wellKnownNAT64 = prefix("64:ff9b::/96")
	sixToFour      = prefix("2002::/16")
)

// specialPurpose are the blocks of IANA's IPv4 and IPv6 Special-Purpose
// Address Registries that are not globally reachable, beyond those the
// netip predicates name (loopback, private, link-local, multicast), with
// the registries' globally reachable exceptions inside them.
var specialPurpose = []struct {
	prefix netip.Prefix
	except []netip.Prefix
	why    string
}{
	{prefix("0.0.0.0/8"), nil, `an address of "this network"`},
	{prefix("100.64.0.0/10"), nil, "an address of the shared address space (carrier-grade NAT)"},
	{prefix("192.0.0.0/24"), prefixes("192.0.0.9/32", "192.0.0.10/32"), "an IETF protocol assignment"},
	{prefix("192.0.2.0/24"), nil, "a documentation address (TEST-NET-1)"},
	{prefix("192.88.99.0/24"), nil, "a deprecated 6to4 relay anycast address"},
	{prefix("198.18.0.0/15"), nil, "a benchmarking address"},
	{prefix("198.51.100.0/24"), nil, "a documentation address (TEST-NET-2)"},
	{prefix("203.0.113.0/24"), nil, "a documentation address (TEST-NET-3)"},
	{prefix("240.0.0.0/4"), nil, "a reserved address"},
	{prefix("255.255.255.255/32"), nil, "the limited broadcast address"},
	{prefix("64:ff9b:1::/48"), nil, "a local-use IPv4/IPv6 translation address"},
	{prefix("100::/64"), nil, "a discard-only address"},
	{prefix("2001::/23"), prefixes("2001:1::1/128", "2001:1::2/128", "2001:3::/32", "2001:4:112::/48", "2001:20::/28", "2001:30::/28"), "an IETF protocol assignment"},
	{prefix("2001:db8::/32"), nil, "a documentation address"},
	{prefix("3fff::/20"), nil, "a documentation address"},
	{prefix("5f00::/16"), nil, "a segment routing (SRv6) address"},
}

var prefix = netip.MustParsePrefix

func prefixes(ps ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = prefix(p)
	}
	return out
}

// errDestination is a destination a webhook may not post to.
var errDestination = errors.New("forbidden webhook destination")

// resolve returns the addresses of a host, an address itself or a name,
// refusing every one a webhook may not post to unless the operator allows
// private destinations.
func (s *Server) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	addrs := []netip.Addr{}
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = append(addrs, a)
	} else {
		found, err := s.cfg.Resolver.LookupNetIP(ctx, "ip", host)
		if dns := (*net.DNSError)(nil); errors.As(err, &dns) {
			// Its words without the service's own name server, which
			// are nothing a caller should read.
			return nil, fmt.Errorf("%s does not resolve: %s", host, dns.Err)
		}
		if err != nil {
			return nil, fmt.Errorf("%s does not resolve: %w", host, err)
		}
		addrs = found
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s has no address", host)
	}
	if !s.cfg.WebhookAllowPrivate {
		for _, a := range addrs {
			if why := forbiddenAddr(a); why != "" {
				return nil, fmt.Errorf("%w: %s is %s (%s); pal posts only to public addresses, unless the operator allows private ones with --webhook-allow-private", errDestination, host, why, a.Unmap())
			}
		}
	}
	return addrs, nil
}

// checkWebhookURL refuses a webhook URL that is not https:// (unless the
// operator allows http://), or whose host resolves to an address it may
// not post to.
func (s *Server) checkWebhookURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return errorf(codeBadRequest, "url %q is not a URL: send an https:// URL of the receiver", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && s.cfg.WebhookAllowHTTP:
	case u.Scheme == "http":
		return errorf(codeBadRequest, "url %q is http://: webhooks are posted over https:// only, unless the operator allows http:// with --webhook-allow-http", raw)
	default:
		return errorf(codeBadRequest, "url %q is not an https:// URL", raw)
	}
	if u.User != nil {
		return errorf(codeBadRequest, "url %q carries a user name or password: the posts are signed, so send the URL without them", raw)
	}
	if _, err := s.resolve(ctx, u.Hostname()); err != nil {
		return errorf(codeBadRequest, "url %q: %v", raw, err)
	}
	return nil
}

// webhookClient posts to webhooks: it connects only to the addresses the
// checks allow, resolved again when it dials (a name that changes its
// answer cannot slip through), follows no redirect, and gives up on a slow
// receiver.
func (s *Server) webhookClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			addrs, err := s.resolve(ctx, host)
			if err != nil {
				return nil, err
			}
			var firstErr error
			for _, a := range addrs {
				conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
				if err == nil {
					return conn, nil
				}
				if firstErr == nil {
					firstErr = err
				}
			}
			return nil, firstErr
		},
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		MaxIdleConnsPerHost:   2,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
