package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	good := []string{
		"sandbox/1/2/0123456789abcdef0123456789abcdef.enc",
		"k",
		"a.b/..c/c..",
		"dir/.hidden",
		"ünïcödé/ключ",
		"spaces are fine/x y",
		strings.Repeat("k", MaxKeyLen),
	}
	for _, key := range good {
		if err := ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v", key, err)
		}
	}
	bad := []string{
		"",
		"..",
		".",
		"../otherbucket/secret.enc",
		"sandbox/../../../etc/passwd",
		"a/..",
		"a/./b",
		"/etc/passwd",
		"//x",
		"a//b",
		"a/",
		"a\\b",
		"..\\..\\x",
		"x\x00y",
		"x\ny",
		"x\ry",
		"x\ty",
		"x\x7fy",
		"x\u0085y",
		"x\xffy",
		strings.Repeat("k", MaxKeyLen+1),
	}
	for _, key := range bad {
		err := ValidateKey(key)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", key, err)
			continue
		}
		if len(err.Error()) > 200 {
			t.Errorf("ValidateKey(%.20q...): error text of %d bytes", key, len(err.Error()))
		}
	}
}

func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../b", "/x", "a\x00", "a\\b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key) != nil {
			return
		}
		// An accepted key never names anything outside the bucket.
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q", key)
			}
		}
		if strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("accepted %q", key)
		}
	})
}
