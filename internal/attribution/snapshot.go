package attribution

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"time"

	"github.com/palproject/pal/internal/azure"
	"github.com/palproject/pal/internal/directory"
	"github.com/palproject/pal/internal/event"
)

// The snapshot mirrors the engine's state with exported fields, for gob.
type snapshot struct {
	Now        time.Time
	Tenants    map[string]snapTenant
	Orgs       map[string]directory.SnapOrg
	Former     map[string]string
	Inputs     map[string]map[string]directory.Inputs // org → month → inputs
	History    map[string]map[string][]Interval       // tenant → resource → intervals
	Transients map[string]map[string][]Transient      // tenant → resource → credits held no time
	Options    Options
}

type snapTenant struct {
	Accounts  map[string]snapAccount
	Envs      map[string]string // environment → type
	Resources map[string]snapResource
	Azure     *azure.Tenant
}

type snapAccount struct {
	Kind, Name        string
	Disabled, Deleted bool
	Link              string
	LinkedAt          time.Time
	LinkVersion       int
	LinkCreated       time.Time
	LastLink          string
	States            []azure.AccountState
	Created           time.Time
}

type snapResource struct {
	Kind, Env, Name, Owner string
	OwnerSince             time.Time
	Coowners, Active       map[string]time.Time
	Activity               map[string]time.Time
	Credit                 Credit
	Born                   time.Time
}

// Snapshot encodes the engine's whole state, so that a later process can
// restore it and apply only the events that came after.
func (e *Engine) Snapshot() ([]byte, error) {
	s := snapshot{Now: e.now, Tenants: map[string]snapTenant{}, History: map[string]map[string][]Interval{}, Transients: map[string]map[string][]Transient{}, Options: e.opts}
	s.Orgs, s.Former, s.Inputs = e.dir.Snapshot()
	for id, t := range e.tenants {
		st := snapTenant{Accounts: map[string]snapAccount{}, Envs: map[string]string{}, Resources: map[string]snapResource{}, Azure: e.az.Tenant(id)}
		for aid, a := range t.accounts {
			st.Accounts[aid] = snapAccount{a.kind, a.name, a.disabled, a.deleted, a.link, a.linkedAt, a.linkVersion, a.linkCreated, a.lastLink, a.states, a.created}
		}
		for eid, env := range t.envs {
			st.Envs[eid] = env.envType
		}
		for rid, r := range t.resources {
			st.Resources[rid] = snapResource{r.kind, r.env, r.name, r.owner, r.ownerSince, r.coowners, r.active, r.activity, r.credit, r.born}
		}
		s.Tenants[id] = st
	}
	for id, t := range e.tenants {
		s.History[id] = t.history
		s.Transients[id] = t.transients
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore returns an engine with the state of a snapshot. It returns an
// error when the data is not a snapshot.
func Restore(data []byte) (*Engine, error) {
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	e := New(s.Options)
	e.now = s.Now
	for id, st := range s.Tenants {
		t := e.tenant(id)
		for eid, typ := range st.Envs {
			t.envs[eid] = &environment{envType: typ, resources: map[string]struct{}{}}
		}
		for aid, a := range st.Accounts {
			t.accounts[aid] = &account{kind: a.Kind, name: a.Name, disabled: a.Disabled, deleted: a.Deleted,
				link: a.Link, linkedAt: a.LinkedAt, linkVersion: a.LinkVersion, linkCreated: a.LinkCreated, lastLink: a.LastLink,
				roles: map[string]struct{}{}, states: a.States, created: a.Created}
			if a.Link != "" {
				e.indexLink(a.Link, accountKey{id, aid})
			}
		}
		for rid, sr := range st.Resources {
			r := &resource{kind: sr.Kind, spec: event.Kinds[sr.Kind], env: sr.Env, name: sr.Name, owner: sr.Owner,
				ownerSince: sr.OwnerSince, coowners: orEmpty(sr.Coowners), active: orEmpty(sr.Active),
				activity: orEmpty(sr.Activity), credit: sr.Credit, born: sr.Born}
			t.resources[rid] = r
			t.envs[r.env].resources[rid] = struct{}{}
			for _, acct := range r.accounts() {
				t.accounts[acct].roles[rid] = struct{}{}
			}
		}
		e.az.RestoreTenant(id, st.Azure)
	}
	e.dir = directory.Restore(s.Orgs, s.Former, s.Inputs)
	for tid, rs := range s.History {
		t := e.tenant(tid)
		for rid, h := range rs {
			t.history[rid] = h
		}
	}
	for tid, rs := range s.Transients {
		t := e.tenant(tid)
		for rid, ts := range rs {
			t.transients[rid] = ts
		}
	}
	return e, nil
}

func orEmpty(m map[string]time.Time) map[string]time.Time {
	if m == nil {
		return map[string]time.Time{}
	}
	return m
}
