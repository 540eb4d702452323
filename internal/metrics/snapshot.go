package metrics

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

type snapUsers struct {
	Key     []string
	Full    []byte
	Partial map[uint32]float64
}

type snapValue struct {
	Key   []string
	Value float64
}

// snapshotVersion numbers the snapshot's format: version 2 numbers users
// within their tenant. A snapshot of another version is refused, and its
// reader folds the log again.
const snapshotVersion = 2

type aggSnapshot struct {
	Version int
	Months  []string
	// Users lists each tenant's users by their numbers.
	Users     map[string][]string
	Resources []snapUsers
	Workloads []snapUsers
	Profiles  []snapValue
	Instances []snapValue
}

func (u *users) snap(key []string) (snapUsers, error) {
	full, err := u.bitmap().MarshalBinary()
	return snapUsers{Key: key, Full: full, Partial: u.partial}, err
}

func (s snapUsers) users() (*users, error) {
	u := &users{full: roaring.New(), partial: s.Partial}
	return u, u.full.UnmarshalBinary(s.Full)
}

// Snapshot encodes everything the aggregator has collected.
func (a *Aggregator) Snapshot() ([]byte, error) {
	s := aggSnapshot{Version: snapshotVersion, Users: make(map[string][]string, len(a.dict.tenants))}
	for m := range a.months {
		s.Months = append(s.Months, m)
	}
	slices.Sort(s.Months)
	for tenant, users := range a.dict.tenants {
		names := make([]string, users.len())
		for id := range names {
			names[id] = string(users.name(uint32(id)))
		}
		s.Users[tenant] = names
	}
	for _, c := range a.tenants {
		for k, u := range c.resources {
			su, err := u.snap([]string{k.month, k.tenant, k.resource, k.workload, k.org, k.partner})
			if err != nil {
				return nil, fmt.Errorf("snapshot metrics: %w", err)
			}
			s.Resources = append(s.Resources, su)
		}
		for k, u := range c.workloads {
			su, err := u.snap([]string{k.month, k.tenant, k.org, k.workload})
			if err != nil {
				return nil, fmt.Errorf("snapshot metrics: %w", err)
			}
			s.Workloads = append(s.Workloads, su)
		}
		for k, v := range c.profiles {
			s.Profiles = append(s.Profiles, snapValue{[]string{k.month, k.tenant, k.resource, k.workload, k.org, k.partner}, v})
		}
		for k, v := range c.instances {
			s.Instances = append(s.Instances, snapValue{[]string{k.month, k.tenant, k.resource, k.org}, v})
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, fmt.Errorf("snapshot metrics: %w", err)
	}
	return buf.Bytes(), nil
}

// RestoreAggregator returns an aggregator with the contents of a snapshot.
func RestoreAggregator(data []byte) (*Aggregator, error) {
	var s aggSnapshot
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return nil, fmt.Errorf("restore metrics: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("restore metrics: a snapshot of version %d, not %d", s.Version, snapshotVersion)
	}
	a := NewAggregator(s.Months...)
	for tenant, names := range s.Users {
		users := a.dict.users(tenant)
		for id, name := range names {
			if add(users, name, maphash.String(seed, name)) != uint32(id) {
				return nil, fmt.Errorf("restore metrics: user %q of tenant %q is listed twice", name, tenant)
			}
		}
	}
	for _, su := range s.Resources {
		u, err := su.users()
		if err != nil || len(su.Key) != 6 {
			return nil, fmt.Errorf("restore metrics: bad resource entry: %v", err)
		}
		k := su.Key
		a.of(k[1]).resources[resourceKey{k[0], k[1], k[2], k[3], k[4], k[5]}] = u
	}
	for _, su := range s.Workloads {
		u, err := su.users()
		if err != nil || len(su.Key) != 4 {
			return nil, fmt.Errorf("restore metrics: bad workload entry: %v", err)
		}
		k := su.Key
		a.of(k[1]).workloads[workloadKey{k[0], k[1], k[2], k[3]}] = u
	}
	for _, v := range s.Profiles {
		if len(v.Key) != 6 {
			return nil, fmt.Errorf("restore metrics: bad profiles entry")
		}
		k := v.Key
		a.of(k[1]).profiles[resourceKey{k[0], k[1], k[2], k[3], k[4], k[5]}] = v.Value
	}
	for _, v := range s.Instances {
		if len(v.Key) != 4 {
			return nil, fmt.Errorf("restore metrics: bad instance entry")
		}
		k := v.Key
		a.of(k[1]).instances[instanceKey{k[0], k[1], k[2], k[3]}] = v.Value
	}
	return a, nil
}
