package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/envelope"
	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/s3"
	"github.com/omicsomics/omics-worker/storage/s3/s3test"
	"github.com/omicsomics/omics-worker/storage/storagetest"
)

func TestObjectKey(t *testing.T) {
	re := regexp.MustCompile(`^sandbox/12/34/[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}\.enc$`)
	seen := map[string]bool{}
	for range 100 {
		k := storage.ObjectKey(12, 34)
		if !re.MatchString(k) {
			t.Fatalf("storage.ObjectKey = %q", k)
		}
		if seen[k] {
			t.Fatalf("duplicate key %q", k)
		}
		seen[k] = true
	}
}

// stores returns every storage.ObjectStore implementation, fresh and empty. S3 is
// a real gateway (VersityGW); under -short without its binary only the
// local store is returned.
func stores(t *testing.T) map[string]storage.ObjectStore {
	t.Helper()
	ctx := context.Background()
	all := map[string]storage.ObjectStore{}
	if _, err := s3test.VersityBinary(); err == nil || !testing.Short() {
		g := s3test.Versity(t)
		s3store, err := s3.New(ctx, s3.Config{Endpoint: g.URL, AccessKey: g.AccessKey, SecretKey: g.SecretKey, Bucket: "omicsomics"})
		if err != nil {
			t.Fatal(err)
		}
		all["s3"] = s3store
	} else {
		t.Log("-short without versitygw: S3 store not tested")
	}
	localStore, err := local.New(ctx, local.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	all["local"] = localStore
	return all
}

func TestObjectStoreContract(t *testing.T) {
	ctx := context.Background()
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			key := storage.ObjectKey(1, 2)
			if _, _, err := st.Get(ctx, key); !errors.Is(err, storage.ErrObjectNotFound) {
				t.Errorf("Get missing: %v", err)
			}
			if ok, err := st.Exists(ctx, key); ok || err != nil {
				t.Errorf("Exists missing: %v %v", ok, err)
			}
			if err := st.Put(ctx, key, strings.NewReader("payload"), 7, "application/json"); err != nil {
				t.Fatal(err)
			}
			if b, size := storagetest.ReadObject(t, st, key); b != "payload" || size != 7 {
				t.Errorf("Get = %q %d", b, size)
			}
			if ok, err := st.Exists(ctx, key); !ok || err != nil {
				t.Errorf("Exists: %v %v", ok, err)
			}
			if err := st.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if err := st.Delete(ctx, key); err != nil {
				t.Errorf("Delete missing: %v", err)
			}
			if _, _, err := st.Get(ctx, key); !errors.Is(err, storage.ErrObjectNotFound) {
				t.Errorf("Get deleted: %v", err)
			}
			if err := st.Put(ctx, "", strings.NewReader(""), 0, ""); err == nil {
				t.Error("empty key accepted")
			}
		})
	}
}

func TestUploadEncryptedRoundTrip(t *testing.T) {
	ctx := context.Background()
	master, _ := envelope.ParseMasterKey("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	key := envelope.DeriveUserKey(master, 42)
	plain := bytes.Repeat([]byte("chr1\t100\t.\tA\tT\n"), 20000)
	sum := sha256.Sum256(plain)
	for name, st := range stores(t) {
		for _, size := range []int64{int64(len(plain)), -1} {
			objKey := storage.ObjectKey(3, 42)
			up, err := storage.UploadEncrypted(ctx, st, key, objKey, iotest.HalfReader(bytes.NewReader(plain)), size, "application/json")
			if err != nil {
				t.Fatalf("%s size %d: %v", name, size, err)
			}
			if up.Size != int64(len(plain)) || up.Checksum != hex.EncodeToString(sum[:]) || up.ObjectKey != objKey {
				t.Errorf("%s: uploaded %+v", name, up)
			}
			// The stored blob is crypto.py's format.
			rc, blobSize, _ := st.Get(ctx, objKey)
			blob, _ := io.ReadAll(rc)
			rc.Close()
			if blobSize != envelope.BlobSize(int64(len(plain))) {
				t.Errorf("%s: blob size %d", name, blobSize)
			}
			if got, err := envelope.Decrypt(key, blob); err != nil || !bytes.Equal(got, plain) {
				t.Errorf("%s: single-shot Decrypt of the stored blob: %v", name, err)
			}
			d, err := storage.OpenDecrypted(ctx, st, key, objKey)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(d)
			d.Close()
			if err != nil || !bytes.Equal(got, plain) || !d.Verified() {
				t.Errorf("%s: storage.OpenDecrypted: %v", name, err)
			}
			// Wrong user: authentication fails at the end.
			d, _ = storage.OpenDecrypted(ctx, st, envelope.DeriveUserKey(master, 43), objKey)
			if _, err := io.ReadAll(d); !errors.Is(err, envelope.ErrDecrypt) {
				t.Errorf("%s: wrong user: %v", name, err)
			}
			d.Close()
		}
		if _, err := storage.OpenDecrypted(ctx, st, key, storage.ObjectKey(3, 42)); !errors.Is(err, storage.ErrObjectNotFound) {
			t.Errorf("%s: storage.OpenDecrypted missing: %v", name, err)
		}
	}
}

func TestUploadEncryptedFailureLeavesNoObject(t *testing.T) {
	ctx := context.Background()
	key := envelope.DeriveUserKey([]byte("m"), 1)
	boom := errors.New("source failed")
	for name, st := range stores(t) {
		tests := map[string]struct {
			r    io.Reader
			size int64
		}{
			"reader error":    {io.MultiReader(strings.NewReader("some"), iotest.ErrReader(boom)), -1},
			"short plaintext": {strings.NewReader("abc"), 10},
		}
		for tname, tc := range tests {
			objKey := storage.ObjectKey(1, 1)
			if _, err := storage.UploadEncrypted(ctx, st, key, objKey, tc.r, tc.size, ""); err == nil {
				t.Errorf("%s/%s: upload succeeded", name, tname)
			}
			if ok, _ := st.Exists(ctx, objKey); ok {
				t.Errorf("%s/%s: object left behind", name, tname)
			}
		}
	}
}

// lenientStore is a store that takes whatever its reader gave before an
// error as the object (as minio-go does when the reader returns
// io.ErrUnexpectedEOF): UploadEncrypted must still fail and delete it.
type lenientStore struct{ storage.ObjectStore }

func (l lenientStore) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) error {
	var got bytes.Buffer
	_, _ = io.Copy(&got, r)
	return l.ObjectStore.Put(ctx, key, &got, int64(got.Len()), ct)
}

func TestUploadEncryptedShortObjectDeleted(t *testing.T) {
	ctx := context.Background()
	key := envelope.DeriveUserKey([]byte("m"), 1)
	st, err := local.New(ctx, local.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("source failed")
	objKey := storage.ObjectKey(1, 1)
	src := io.MultiReader(strings.NewReader(strings.Repeat("x", 100000)), iotest.ErrReader(boom))
	if _, err := storage.UploadEncrypted(ctx, lenientStore{st}, key, objKey, src, -1, ""); !errors.Is(err, boom) {
		t.Errorf("upload = %v, want the source's error", err)
	}
	if ok, _ := st.Exists(ctx, objKey); ok {
		t.Error("the short object was left behind")
	}
}

// brokenStore fails every Put and Delete.
type brokenStore struct{ storage.ObjectStore }

var errBroken = errors.New("store broken")

func (brokenStore) Put(ctx context.Context, key string, r io.Reader, size int64, ct string) error {
	return errBroken
}
func (brokenStore) Delete(ctx context.Context, key string) error { return errBroken }

// TestUploadEncryptedLeftover: when the clean-up of a failed upload fails
// too, the error says so (the caller must delete the key later); when it
// succeeds, it does not.
func TestUploadEncryptedLeftover(t *testing.T) {
	ctx := context.Background()
	key := envelope.DeriveUserKey([]byte("m"), 1)
	st, err := local.New(ctx, local.Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = storage.UploadEncrypted(ctx, brokenStore{st}, key, storage.ObjectKey(1, 1), strings.NewReader("x"), 1, "")
	if !errors.Is(err, errBroken) || !errors.Is(err, storage.ErrUploadLeftover) {
		t.Errorf("Put and Delete failing: %v, want the Put error and ErrUploadLeftover", err)
	}
	boom := errors.New("source failed")
	_, err = storage.UploadEncrypted(ctx, st, key, storage.ObjectKey(1, 1), iotest.ErrReader(boom), -1, "")
	if !errors.Is(err, boom) || errors.Is(err, storage.ErrUploadLeftover) {
		t.Errorf("source failing: %v, want its error without ErrUploadLeftover", err)
	}
}

// TestKeyRulesEveryStore: every store refuses the same hostile keys with
// storage.ErrInvalidKey (issue 9 #6: S3 used to send them as they were).
func TestKeyRulesEveryStore(t *testing.T) {
	keys := []string{"../otherbucket/secret.enc", "sandbox/../../../etc/passwd", "/etc/passwd", "a//b", "a\\b", "a\x00b", "a\x1bb"}
	for _, key := range keys {
		if storage.ValidateKey(key) == nil {
			t.Fatalf("storage.ValidateKey(%q) accepted", key)
		}
	}
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) { storagetest.RejectsKeys(t, st, keys) })
	}
}
