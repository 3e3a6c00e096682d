package tasks

import (
	"fmt"
	"sync"

	"github.com/omicsomics/omics-worker/storage/envelope"
)

// DefaultMasterKey is the public development default of MASTER_KEY in the
// Omicsomics backend settings (backend/app/settings.py). The backend uses
// it when MASTER_KEY is unset, as in the upstream docker-compose.yml, so
// the worker must do the same to read what the backend wrote. Never use it
// in production.
const DefaultMasterKey = "8f3b2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e"

// MasterKeyring derives per-user keys from MASTER_KEY like crypto.py
// (HKDF-SHA256, info = decimal user id) and caches them.
type MasterKeyring struct {
	master []byte
	mu     sync.Mutex
	keys   map[int64][]byte
}

// NewMasterKeyring parses a MASTER_KEY value (hex or UTF-8, as crypto.py).
func NewMasterKeyring(masterKey string) (*MasterKeyring, error) {
	m, err := envelope.ParseMasterKey(masterKey)
	if err != nil {
		return nil, fmt.Errorf("MASTER_KEY: %w", err)
	}
	return &MasterKeyring{master: m, keys: map[int64][]byte{}}, nil
}

// UserKey returns the key of userID.
func (k *MasterKeyring) UserKey(userID int64) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[userID]; ok {
		return key, nil
	}
	key := envelope.DeriveUserKey(k.master, userID)
	if len(k.keys) > 4096 {
		clear(k.keys)
	}
	k.keys[userID] = key
	return key, nil
}
