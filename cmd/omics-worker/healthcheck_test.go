package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"ready", []string{srv.URL + "/readyz"}, 0, "200 OK"},
		{"not ready", []string{"-url", srv.URL + "/other"}, 1, "503"},
		{"unreachable", []string{"http://127.0.0.1:1/readyz"}, 1, "unreachable"},
		{"bad flag", []string{"-nope"}, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runHealthcheck(context.Background(), tt.args, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, out.String(), errb.String())
			}
			if got := out.String() + errb.String(); !strings.Contains(got, tt.wantOut) {
				t.Errorf("output %q does not contain %q", got, tt.wantOut)
			}
		})
	}
}
