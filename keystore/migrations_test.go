package keystore

import (
	"testing"
	"testing/fstest"
)

func TestReadMigrations(t *testing.T) {
	good := fstest.MapFS{
		"m/0010_b.sql": {Data: []byte("B")},
		"m/0002_a.sql": {Data: []byte("A")},
	}
	ms, err := ReadMigrations(good, "m")
	if err != nil || len(ms) != 2 || ms[0].Version != 2 || ms[1].SQL != "B" {
		t.Errorf("ReadMigrations = %+v, %v; want versions 2 then 10", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no version":     {"m/init.sql": {}},
		"zero version":   {"m/0_init.sql": {}},
		"shared version": {"m/1_a.sql": {}, "m/01_b.sql": {}},
	} {
		if _, err := ReadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: ReadMigrations succeeded, want an error", name)
		}
	}
}
