// The storage backends the binary wires: the object store chosen by the
// scheme of OBJECT_STORAGE_ENDPOINT, and the classifier of their transient
// errors. The storage package declares the contracts (storage.ObjectStore,
// storage.FileStore); choosing an implementation is wiring, so it lives
// here and storage never imports its backends.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/storage/s3"
)

// Object storage defaults of the Python settings (backend/app/settings.py).
const (
	defaultObjectEndpoint  = "http://localhost:9002"
	defaultObjectAccessKey = "minioadmin"
	defaultObjectSecretKey = "minioadmin123"
	defaultObjectBucket    = "omicsomics"
)

// objectStoreConfig selects and configures an object store. Zero values
// mean the Python settings' defaults.
type objectStoreConfig struct {
	// Endpoint is OBJECT_STORAGE_ENDPOINT: http(s)://host:port for S3/MinIO,
	// file:///path for a directory (object KEY of bucket B at /path/B/KEY).
	Endpoint string
	// AccessKey, SecretKey: OBJECT_STORAGE_ACCESS_KEY / _SECRET_KEY (S3 only).
	AccessKey, SecretKey string
	// Bucket: OBJECT_STORAGE_BUCKET (default omicsomics).
	Bucket string
	// Region: S3 signing region (default us-east-1).
	Region string
	// Logger receives debug records (default: discard).
	Logger *slog.Logger
}

// objectStoreConfigFromEnv reads the OBJECT_STORAGE_* variables with
// getenv (os.Getenv in production); unset ones take the defaults.
func objectStoreConfigFromEnv(getenv func(string) string) objectStoreConfig {
	return objectStoreConfig{
		Endpoint:  getenv("OBJECT_STORAGE_ENDPOINT"),
		AccessKey: getenv("OBJECT_STORAGE_ACCESS_KEY"),
		SecretKey: getenv("OBJECT_STORAGE_SECRET_KEY"),
		Bucket:    getenv("OBJECT_STORAGE_BUCKET"),
		Region:    getenv("OBJECT_STORAGE_REGION"),
	}
}

// openObjectStore returns the store the endpoint's scheme selects:
// file:// -> storage/local, http:// or https:// -> storage/s3.
func openObjectStore(ctx context.Context, cfg objectStoreConfig) (storage.ObjectStore, error) {
	endpoint := cmp.Or(cfg.Endpoint, defaultObjectEndpoint)
	bucket := cmp.Or(cfg.Bucket, defaultObjectBucket)
	scheme, _, _ := strings.Cut(endpoint, "://")
	switch strings.ToLower(scheme) {
	case "file":
		root, err := local.RootFromEndpoint(endpoint)
		if err != nil {
			return nil, err
		}
		return local.New(ctx, local.Config{Root: root, Bucket: bucket})
	case "http", "https":
		return s3.New(ctx, s3.Config{Endpoint: endpoint, Bucket: bucket, Region: cfg.Region, Logger: cfg.Logger,
			AccessKey: cmp.Or(cfg.AccessKey, defaultObjectAccessKey), SecretKey: cmp.Or(cfg.SecretKey, defaultObjectSecretKey)})
	}
	return nil, fmt.Errorf("storage: OBJECT_STORAGE_ENDPOINT %q: want http://, https:// or file:///", mask.URL(endpoint))
}

// storageIsTransient reports whether an error of the wired backends
// (storage/postgres, storage/s3; storage/local has no outages) is worth
// retrying with backoff: each backend classifies its own errors.
func storageIsTransient(err error) bool {
	return postgres.IsTransient(err) || s3.IsTransient(err)
}
