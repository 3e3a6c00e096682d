package main

import (
	"context"
	"testing"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/s3"
)

func TestObjectStoreConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"OBJECT_STORAGE_ENDPOINT":   "http://minio:9000",
		"OBJECT_STORAGE_ACCESS_KEY": "ak",
		"OBJECT_STORAGE_SECRET_KEY": "sk",
		"OBJECT_STORAGE_BUCKET":     "bkt",
	}
	got := objectStoreConfigFromEnv(func(k string) string { return env[k] })
	if got.Endpoint != "http://minio:9000" || got.AccessKey != "ak" || got.SecretKey != "sk" || got.Bucket != "bkt" {
		t.Errorf("config %+v", got)
	}
}

func TestOpenObjectStoreSchemes(t *testing.T) {
	ctx := context.Background()
	for _, ep := range []string{"ftp://x", "minio:9000", "file://host/x"} {
		if _, err := openObjectStore(ctx, objectStoreConfig{Endpoint: ep}); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
	// The zero config is the Python default (http://localhost:9002), with
	// no network access at construction.
	s, err := openObjectStore(ctx, objectStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := s.(*s3.Store); !ok || st.Bucket() != "omicsomics" {
		t.Errorf("default store %T", s)
	}
	root := t.TempDir()
	ls, err := openObjectStore(ctx, objectStoreConfig{Endpoint: "file://" + root, Bucket: "bkt"})
	if err != nil || ls.(*local.Store).Dir() != root+"/bkt" {
		t.Errorf("local store dir: %v", err)
	}
}

// TestObjectEndpointErrorsHideSecrets: a refused OBJECT_STORAGE_ENDPOINT
// is named in the error with its password masked (issue 9 #5).
func TestObjectEndpointErrorsHideSecrets(t *testing.T) {
	for _, ep := range []string{
		"http://minio:" + masktest.Password + "@127.0.0.1:9/path",   // s3: a path
		"http://minio:" + masktest.PercentPassword + "@127.0.0.1:9", // s3: does not parse
		"ftp://u:" + masktest.Password + "@h/",                      // no such store
		"file://u:" + masktest.Password + "@host/data",              // local: a host
	} {
		_, err := openObjectStore(context.Background(), objectStoreConfig{Endpoint: ep})
		if err == nil {
			t.Errorf("%s: accepted", ep)
			continue
		}
		masktest.Check(t, "openObjectStore error", err.Error())
	}
}
