// Package envelope implements the per-user envelope encryption of the
// Omicsomics backend (backend/app/core/crypto.py): a per-user key derived
// from the master key with HKDF-SHA256, and AES-256-GCM blobs laid out as
// nonce (12 bytes) || ciphertext || tag (16 bytes), no associated data.
//
// Two APIs produce and consume the same blob format:
//
//   - Encrypt / Decrypt work on whole byte slices (like crypto.py).
//   - NewEncryptWriter / NewDecryptReader / DecryptToFile stream, holding
//     only a fixed-size buffer, so files of any size (up to the GCM limit
//     of MaxPlaintextSize) can be processed in constant memory.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

const (
	// KeySize is the size of a derived per-user key (AES-256).
	KeySize = 32
	// NonceSize is the size of the random GCM nonce that starts a blob.
	NonceSize = 12
	// TagSize is the size of the GCM authentication tag that ends a blob.
	TagSize = 16
	// Overhead is the number of bytes a blob has on top of its plaintext.
	Overhead = NonceSize + TagSize
	// minBlobSize is the shortest blob crypto.py accepts before it even
	// tries to decrypt (len(blob) < 13 raises "Encrypted blob too short").
	minBlobSize = NonceSize + 1
	// MaxPlaintextSize is the GCM limit on the plaintext length for one
	// nonce: 2^32-2 blocks of 16 bytes (about 64 GiB).
	MaxPlaintextSize = (1<<32 - 2) * 16
)

var (
	// ErrBlobTooShort is returned for blobs shorter than 13 bytes; the
	// text matches crypto.py's ValueError.
	ErrBlobTooShort = errors.New("Encrypted blob too short") //nolint:staticcheck // message kept identical to crypto.py
	// ErrDecrypt is returned when authentication fails: wrong key (wrong
	// user or MASTER_KEY) or tampered/truncated data.
	ErrDecrypt = errors.New("decryption failed: wrong key or tampered data")
	// ErrEmptyMasterKey is returned by ParseMasterKey for an empty key.
	ErrEmptyMasterKey = errors.New("MASTER_KEY is empty")
	// ErrTooLarge is returned when a plaintext exceeds MaxPlaintextSize.
	ErrTooLarge = errors.New("plaintext exceeds the AES-GCM limit for one nonce")
	// ErrKeySize is returned for keys that are not KeySize bytes long.
	ErrKeySize = errors.New("envelope key must be 32 bytes")
)

// ParseMasterKey turns the MASTER_KEY setting into key material the way
// crypto.py does: if s is valid hex (even length, hex digits only, either
// case) its decoded bytes are used, otherwise its UTF-8 bytes. An empty
// string is rejected (crypto.py would silently derive keys from an empty
// master key).
func ParseMasterKey(s string) ([]byte, error) {
	if s == "" {
		return nil, ErrEmptyMasterKey
	}
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	return []byte(s), nil
}

// DeriveUserKey returns the 32-byte AES key of user userID:
// HKDF-SHA256(master, salt = none, info = decimal user id).
func DeriveUserKey(master []byte, userID int64) []byte {
	// RFC 5869 with an absent salt (HashLen zero bytes). One SHA-256
	// output block is exactly KeySize bytes, so expand needs only T(1).
	extract := hmac.New(sha256.New, make([]byte, sha256.Size))
	extract.Write(master)
	prk := extract.Sum(nil)
	expand := hmac.New(sha256.New, prk)
	expand.Write([]byte(strconv.FormatInt(userID, 10)))
	expand.Write([]byte{1})
	return expand.Sum(nil)[:KeySize]
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w (got %d)", ErrKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return cipher.NewGCM(block)
}

// Encrypt seals plaintext under key with a fresh random nonce and returns
// nonce || ciphertext || tag.
func Encrypt(key, plaintext []byte) ([]byte, error) {
	if uint64(len(plaintext)) > MaxPlaintextSize {
		return nil, ErrTooLarge
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, NonceSize, NonceSize+len(plaintext)+TagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("envelope: nonce: %w", err)
	}
	return aead.Seal(out, out[:NonceSize], plaintext, nil), nil
}

// encryptWithNonce is Encrypt with a caller-chosen nonce (test vectors).
func encryptWithNonce(key, nonce, plaintext []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	out := append(make([]byte, 0, NonceSize+len(plaintext)+TagSize), nonce...)
	return aead.Seal(out, nonce, plaintext, nil), nil
}

// Decrypt opens a blob produced by Encrypt (or crypto.py). Blobs shorter
// than 13 bytes yield ErrBlobTooShort; any authentication failure yields
// ErrDecrypt.
func Decrypt(key, blob []byte) ([]byte, error) {
	if len(blob) < minBlobSize {
		return nil, ErrBlobTooShort
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(blob) < Overhead {
		return nil, ErrDecrypt
	}
	pt, err := aead.Open(nil, blob[:NonceSize], blob[NonceSize:], nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// BlobSize returns the size of the blob of a plaintext of n bytes.
func BlobSize(n int64) int64 { return n + Overhead }
