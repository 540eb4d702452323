package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// TestWriteAzureKeepsItsBytes pins the bytes of two small Azure data sets:
// the same seed gives the same files, and the streaming writer gives the
// files that the writer that held everything in memory gave. The hashes
// were taken of the files of pal gen --azure --seed S --tenants N
// --resources R --months 2 before the change (cmp says the same of the
// files at --tenants 2000 --resources 1000000). A Parquet file names the
// library that wrote it, with its version when the binary knows it, which
// a test binary does not: that name is left out of the hash.
func TestWriteAzureKeepsItsBytes(t *testing.T) {
	for _, tc := range []struct {
		seed                         uint64
		tenants, resources           int
		wantControl, wantConsumption string
	}{
		{1, 5, 40, "8e1db9f20083c2ae0b8f389e17f189b9aacf15aa060c2504cbcd2bef478e6e9e", "d2e33d119d6a54e1232b409918811c104999e8caa54bd35c5683d3372cfb99c0"},
		{3, 12, 500, "df355e9d1570e5e17495ab4b15611e63f34e814b856db29f95bf814862f854a0", "6249710a07ac9b2ee8c6bacf837ca67efda91d39365a2e1318122686c0cf7a17"},
	} {
		var control, consumption bytes.Buffer
		cfg := AzureConfig{Seed: tc.seed, Tenants: tc.tenants, Resources: tc.resources, Months: 2}
		if err := WriteAzure(cfg, &control, &consumption); err != nil {
			t.Fatal(err)
		}
		if got := hash(control.Bytes()); got != tc.wantControl {
			t.Errorf("seed %d: control.ndjson hashes to %s, want %s", tc.seed, got, tc.wantControl)
		}
		if got := parquetHash(t, consumption.Bytes()); got != tc.wantConsumption {
			t.Errorf("seed %d: consumption.parquet hashes to %s, want %s", tc.seed, got, tc.wantConsumption)
		}
	}
}

func hash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// parquetHash hashes a Parquet file but for the name of the library that
// wrote it (its footer's created_by).
func parquetHash(t *testing.T, data []byte) string {
	t.Helper()
	n := len(data)
	if n < 12 || string(data[n-4:]) != "PAR1" {
		t.Fatal("not a Parquet file")
	}
	size := int(binary.LittleEndian.Uint32(data[n-8 : n-4]))
	var meta format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), data[n-8-size:n-8], &meta); err != nil {
		t.Fatal(err)
	}
	meta.CreatedBy = ""
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &meta)
	if err != nil {
		t.Fatal(err)
	}
	return hash(append(bytes.Clone(data[:n-8-size]), footer...))
}
