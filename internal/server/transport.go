package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/palproject/pal/internal/lease"
	"github.com/palproject/pal/internal/store"
)

// The parts of an answer across tenants are asked of their owners as the
// answer itself is asked (SPEC.md section 10): the same request, with the
// caller's token, which the owner checks again, and partHeader, which names
// the part (the handler's n-th gathering) and the buckets it is asked for.
// The owner answers the part as JSON, computed over those buckets, when its
// state owns them all, and Conflict otherwise: the leases moved, and the
// process asking reads them again.

// partHeader asks a process for its part of an answer: "n;b,b,…".
const partHeader = "X-Pal-Part"

// keyHeader carries the key of the processes sharing a database (the
// store's Key): a request with it is a process's, which reads as the
// operator does.
const keyHeader = "X-Pal-Key"

// errPartGiven ends a handler that gave another process its part.
var errPartGiven = errors.New("the part was given")

// gathering is what a request's handler gathers parts for: the request,
// its body, and, when another process asks for a part, which.
type gathering struct {
	r    *http.Request
	body []byte
	ask  *partAsk
	w    http.ResponseWriter
	here bool
	// patient waits for the owner's answer as long as ctx allows, for a
	// part the owner must fold records for first.
	patient bool
	mu      sync.Mutex
	calls   int
}

// partAsk is a part another process asks for.
type partAsk struct {
	n       int
	buckets map[int]bool
}

type gatheringKey struct{}

// withGathering prepares a request's handler to gather parts: it keeps the
// body of a request whose parts read it (keepBody), to ask the owners
// with, and reads what part another process asks for. A question about
// one tenant that this process folds (oneTenant) is answered from its own
// part alone.
func (s *Server) withGathering(w http.ResponseWriter, r *http.Request, keepBody, oneTenant bool) (*http.Request, error) {
	if s.own == nil {
		return r, nil
	}
	g := &gathering{r: r, w: w, here: oneTenant}
	if keepBody && r.Body != nil {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBatchBytes))
		if err != nil {
			return r, errorf(codeBadRequest, "read the request: %v", err)
		}
		g.body = body
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if v := r.Header.Get(partHeader); v != "" && r.Header.Get(forwardedBy) != "" {
		ask, err := parsePartAsk(v)
		if err != nil {
			return r, errorf(codeBadRequest, "%s: %v", partHeader, err)
		}
		g.ask = ask
	}
	return r.WithContext(context.WithValue(r.Context(), gatheringKey{}, g)), nil
}

func parsePartAsk(v string) (*partAsk, error) {
	ns, bs, ok := strings.Cut(v, ";")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n < 1 {
		return nil, fmt.Errorf("%q is not n;buckets", v)
	}
	ask := &partAsk{n: n, buckets: make(map[int]bool)}
	for _, f := range strings.Split(bs, ",") {
		b, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not n;buckets", v)
		}
		ask.buckets[b] = true
	}
	return ask, nil
}

func gatheringOf(ctx context.Context) *gathering {
	g, _ := ctx.Value(gatheringKey{}).(*gathering)
	return g
}

// inBuckets says whether a tenant is of one of the buckets.
func (s *Server) inBuckets(buckets map[int]bool) func(tenant string) bool {
	n := s.own.Buckets()
	return func(tenant string) bool { return buckets[store.Bucket(tenant, n)] }
}

// gatherShared computes the parts of an answer across tenants of a process
// sharing them: its own, over the buckets its state owns, and each other
// owner's, asked of it; or, asked by another process, the part it asks
// for. part computes a part over the tenants an owner is given.
func gatherShared[T any](ctx context.Context, s *Server, g *gathering, part func(o owner) (T, error)) ([]T, error) {
	if g.here {
		p, err := part(owner{s: s})
		return []T{p}, err
	}
	g.mu.Lock()
	g.calls++
	n := g.calls
	g.mu.Unlock()
	if g.ask != nil {
		if err := s.holds(ctx, g.ask.buckets); err != nil {
			return nil, err
		}
		p, err := part(owner{s: s, group: s.inBuckets(g.ask.buckets)})
		if err != nil || n != g.ask.n {
			return []T{p}, err
		}
		writeJSON(g.w, http.StatusOK, p)
		return nil, errPartGiven
	}
	parts, err := gatherOnce(ctx, s, g, n, false, part)
	if errors.Is(err, errMoved) {
		// The leases moved since the last round: read them again, and
		// ask once more.
		parts, err = gatherOnce(ctx, s, g, n, true, part)
	}
	if errors.Is(err, errMoved) {
		return nil, &apiError{Code: codeUnavailable, Message: "the buckets of the tenants are changing hands: ask again in a few seconds", RetryAfter: 2}
	}
	return parts, err
}

// errMoved is a part whose owner did not answer it: the leases moved.
var errMoved = errors.New("a bucket changed hands")

// gatherOnce asks each owner for its part, as the leases route the
// buckets (as the database has them, when fresh), and computes its own.
func gatherOnce[T any](ctx context.Context, s *Server, g *gathering, n int, fresh bool, part func(o owner) (T, error)) ([]T, error) {
	routes, err := s.own.Routes(ctx, fresh)
	if err != nil {
		return nil, err
	}
	local := make(map[int]bool)
	remote := make(map[string][]int)
	to := make(map[string]lease.Route)
	for b := range s.own.Buckets() {
		r, ok := routes[b]
		switch {
		case !ok && !fresh:
			return nil, fmt.Errorf("%w: no owner of bucket %d in the last round's leases", errMoved, b)
		case !ok:
			return nil, &apiError{Code: codeUnavailable, Message: fmt.Sprintf("no process holds bucket %d of the tenants for the moment: ask again in a few seconds", b), RetryAfter: 2}
		case r.Self:
			local[b] = true
		default:
			remote[r.Owner] = append(remote[r.Owner], b)
			to[r.Owner] = r
		}
	}
	var parts []T
	if len(local) > 0 {
		if err := s.holds(ctx, local); err != nil {
			return nil, fmt.Errorf("%w: %v", errMoved, err)
		}
		p, err := part(owner{s: s, group: s.inBuckets(local)})
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	owners := slices.Sorted(maps.Keys(remote))
	asked := make([]T, len(owners))
	errs := make([]error, len(owners))
	var wg sync.WaitGroup
	for i, o := range owners {
		wg.Go(func() { errs[i] = s.askPart(ctx, g, n, to[o], remote[o], &asked[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return append(parts, asked...), nil
}

// holds checks that the state owns the buckets a part is asked for.
func (s *Server) holds(ctx context.Context, buckets map[int]bool) error {
	if err := s.reownNow(ctx); err != nil {
		return err
	}
	owning := s.owning.Load()
	for b := range buckets {
		if owning == nil {
			return errorf(codeConflict, "this process owns no bucket yet")
		}
		if _, ok := (*owning)[b]; !ok {
			return errorf(codeConflict, "this process does not own bucket %d", b)
		}
	}
	return nil
}

// askPart asks an owner for the n-th part of the answer to g's request
// over the buckets given, and reads it into out.
func (s *Server) askPart(ctx context.Context, g *gathering, n int, to lease.Route, buckets []int, out any) error {
	req, err := s.ownerRequest(ctx, to, g.r, g.body)
	if err != nil {
		return err
	}
	slices.Sort(buckets)
	names := make([]string, len(buckets))
	for i, b := range buckets {
		names[i] = strconv.Itoa(b)
	}
	req.Header.Set(partHeader, strconv.Itoa(n)+";"+strings.Join(names, ","))
	client := s.forwarder
	if g.patient {
		client = s.patient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s did not answer: %v", errMoved, to.Owner, err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return json.NewDecoder(res.Body).Decode(out)
	case http.StatusConflict, http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %s answered %d", errMoved, to.Owner, res.StatusCode)
	}
	// The owner refused the caller as this process would (its token,
	// its role): its answer is the caller's.
	var e struct {
		Error apiError `json:"error"`
	}
	if json.NewDecoder(res.Body).Decode(&e) == nil && e.Error.Code != "" {
		return &e.Error
	}
	return fmt.Errorf("%s answered its part with %d", to.Owner, res.StatusCode)
}

// isProcess reports whether a request carries the key of the processes.
func (s *Server) isProcess(r *http.Request) bool {
	key := r.Header.Get(keyHeader)
	return s.key != "" && key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.key)) == 1
}
