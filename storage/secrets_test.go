package storage

import (
	"context"
	"testing"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
	"github.com/omicsomics/omics-worker/storage/postgres"
)

// TestConfigErrorsHideSecrets: a refused DATABASE_URL or
// OBJECT_STORAGE_ENDPOINT is named in the error with its password masked
// (issue 9 #5).
func TestConfigErrorsHideSecrets(t *testing.T) {
	for _, ep := range []string{
		"http://minio:" + masktest.Password + "@127.0.0.1:9/path",   // s3: a path
		"http://minio:" + masktest.PercentPassword + "@127.0.0.1:9", // s3: does not parse
		"ftp://u:" + masktest.Password + "@h/",                      // no such store
		"file://u:" + masktest.Password + "@host/data",              // local: a host
	} {
		_, err := OpenObjectStore(context.Background(), ObjectStoreConfig{Endpoint: ep})
		if err == nil {
			t.Errorf("%s: accepted", ep)
			continue
		}
		masktest.Check(t, "OpenObjectStore error", err.Error())
	}
	for _, u := range []string{
		"postgresql+asyncpg://admin:" + masktest.PercentPassword + "@db/x",
		"postgresql://admin:" + masktest.Password + "@db:port/x",
		"mysql://admin:" + masktest.Password + "@db/x",
	} {
		_, err := postgres.ParseDatabaseURL(u)
		if err == nil {
			t.Errorf("%s: accepted", u)
			continue
		}
		masktest.Check(t, "ParseDatabaseURL error", err.Error())
		if _, err := postgres.Open(context.Background(), u); err != nil {
			masktest.Check(t, "postgres.Open error", err.Error())
		}
	}
}
