package collect

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/palproject/pal/internal/event"
)

// Config is what pal collect reads, and from where: the configuration file
// (collect.json). Nothing else is stored: credentials come from the
// environment, the Azure way.
type Config struct {
	// Tenants are the directories to read, each with its scopes and
	// sources.
	Tenants []Tenant `json:"tenants"`
	// CostDays is how many days before the run's own the cost query asks
	// for, so that costs revised after the day (they are, for about three
	// days) replace what was read before. Default 7.
	CostDays int `json:"cost_days,omitempty"`
	// Concurrency bounds the requests in flight to each tenant. Default 4.
	Concurrency int `json:"concurrency,omitempty"`
	// RequestTimeout bounds each try of a request. Default 1m.
	RequestTimeout Duration `json:"request_timeout,omitempty"`
	// Retries is how many times a request answered 408, 429, 500, 502, 503
	// or 504 (or not answered) is tried again, after the Retry-After the
	// API asks for or a growing back-off. Default 4.
	Retries int `json:"retries,omitempty"`
	// Cloud is "public" (the default), "usgovernment" or "china".
	Cloud string `json:"cloud,omitempty"`
}

// Tenant is one directory to read.
type Tenant struct {
	// Tenant is the directory's ID: where the events belong, and where the
	// credential signs in unless SignIn says otherwise.
	Tenant string `json:"tenant"`
	// SignIn names another tenant for the credential to sign in to: a
	// partner reading a customer's subscriptions through Azure Lighthouse
	// signs in to its own.
	SignIn string `json:"sign_in_tenant,omitempty"`
	// Subscriptions are read for role assignments, PIM, Lighthouse
	// delegations and costs; none named: every subscription of the tenant
	// the credential can see.
	Subscriptions []string `json:"subscriptions,omitempty"`
	// ManagementGroups are read for the role assignments and PIM
	// eligibilities made at them (those made above a subscription also
	// show in its own lists, but PIM lists them only where they are made).
	ManagementGroups []string `json:"management_groups,omitempty"`
	// Lighthouse adds every subscription delegated to the credential
	// through Azure Lighthouse, each read in its own (the customer's)
	// tenant, for the sources that Azure Resource Manager answers.
	Lighthouse bool `json:"lighthouse,omitempty"`
	// Groups are security groups whose members to read besides those the
	// log already knows in the tenant (those role assignments name).
	Groups []string `json:"groups,omitempty"`
	// Sources are read, in the order pal reads them whatever the order
	// here; none named: all of them.
	Sources []string `json:"sources,omitempty"`
}

// Duration is a time.Duration written as Go writes one ("90s", "2m").
type Duration time.Duration

// UnmarshalJSON reads "90s", "2m", "1h30m".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"90s\" or \"2m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration such as \"90s\" or \"2m\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as UnmarshalJSON reads it.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Sources lists the sources pal collects, in the order it reads them: each
// one's events are in the log before the next one is read, since the later
// ones diff against what the earlier ones add (an account before the role
// it holds, a group before its members, an eligibility before its
// activations).
var Sources = []string{
	"management-groups",
	"users",
	"azure-roles",
	"azure-pim",
	"groups",
	"lighthouse",
	"links",
	"azure-costs",
}

// armSources are the sources Azure Resource Manager answers for a
// subscription: those a partner reads through Azure Lighthouse, where
// Microsoft Graph does not reach.
var armSources = []string{"azure-roles", "azure-pim", "lighthouse", "azure-costs"}

// notCollected are the sources pal imports and does not collect yet, with
// what to do instead.
var notCollected = map[string]string{
	"audit":     "pal does not collect audit records yet (the Office 365 Management Activity API): export them from Microsoft Purview and pal import audit",
	"powerapps": "pal does not collect Power Platform inventories yet: export them with the admin cmdlets and pal import powerapps",
}

// Defaults.
const (
	defaultCostDays       = 7
	defaultConcurrency    = 4
	defaultRequestTimeout = Duration(time.Minute)
	defaultRetries        = 4
)

// ReadConfig reads a configuration and checks it, filling in the defaults.
// It returns an error naming the first mistake: an unknown field (a
// misspelt one would otherwise be ignored), a tenant named twice or not at
// all, an unknown source, a subscription or group that is no Azure ID.
func ReadConfig(r io.Reader) (Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Config{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, configError(data, dec, err)
	}
	return c, c.check()
}

// configError says where in the file a decoding error is.
func configError(data []byte, dec *json.Decoder, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	off := dec.InputOffset()
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	line := 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	return fmt.Errorf("line %d: %v", line, err)
}

// check checks a configuration and fills in its defaults.
func (c *Config) check() error {
	if len(c.Tenants) == 0 {
		return errors.New(`no tenants: name at least one, {"tenants": [{"tenant": "<tenant ID>"}]}`)
	}
	seen := map[string]bool{}
	for i := range c.Tenants {
		t := &c.Tenants[i]
		t.Tenant = strings.TrimSpace(t.Tenant)
		switch {
		case t.Tenant == "":
			return fmt.Errorf("tenants[%d] names no tenant", i)
		case seen[strings.ToLower(t.Tenant)]:
			return fmt.Errorf("tenant %s is named twice: name each tenant once, with all its subscriptions", t.Tenant)
		}
		seen[strings.ToLower(t.Tenant)] = true
		elsewhere := t.SignIn != "" && !strings.EqualFold(t.SignIn, t.Tenant)
		switch {
		case len(t.Sources) == 0 && elsewhere:
			t.Sources = slices.Clone(armSources)
		case len(t.Sources) == 0:
			t.Sources = slices.Clone(Sources)
		}
		for _, s := range t.Sources {
			if why, ok := notCollected[s]; ok {
				return fmt.Errorf("tenant %s: %s", t.Tenant, why)
			}
			if !slices.Contains(Sources, s) {
				return fmt.Errorf("tenant %s: unknown source %q: pal collects %s", t.Tenant, s, strings.Join(Sources, ", "))
			}
			if elsewhere && !slices.Contains(armSources, s) {
				return fmt.Errorf("tenant %s signs in to tenant %s, which reaches its subscriptions (%s) and not its directory: %s is read signed in to the tenant itself", t.Tenant, t.SignIn, strings.Join(armSources, ", "), s)
			}
		}
		for _, s := range t.Subscriptions {
			if !event.IsSegment(s) {
				return fmt.Errorf("tenant %s: %q is not a subscription ID", t.Tenant, s)
			}
		}
		for _, g := range t.ManagementGroups {
			if !event.IsSegment(g) {
				return fmt.Errorf("tenant %s: %q is not a management group ID", t.Tenant, g)
			}
		}
		for _, g := range t.Groups {
			if !event.IsSegment(g) {
				return fmt.Errorf("tenant %s: %q is not a group's object ID", t.Tenant, g)
			}
		}
	}
	if c.CostDays == 0 {
		c.CostDays = defaultCostDays
	}
	if c.CostDays < 1 || c.CostDays > 365 {
		return fmt.Errorf("cost_days %d: the cost query reaches back 1 to 365 days", c.CostDays)
	}
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		return fmt.Errorf("concurrency %d: between 1 and 64 requests a tenant", c.Concurrency)
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.Retries == 0 {
		c.Retries = defaultRetries
	}
	if c.Retries < 0 || c.Retries > 10 {
		return fmt.Errorf("retries %d: between 0 and 10", c.Retries)
	}
	if _, ok := clouds[c.cloud()]; !ok {
		return fmt.Errorf("cloud %q: pal knows public, usgovernment and china", c.Cloud)
	}
	return nil
}

func (c *Config) cloud() string { return strings.ToLower(cmp.Or(c.Cloud, "public")) }
