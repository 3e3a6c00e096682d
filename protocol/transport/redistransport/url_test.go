package redistransport

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want Endpoint
	}{
		{"redis://", Endpoint{Network: "tcp", Address: "127.0.0.1:6379"}},
		{"redis://localhost", Endpoint{Network: "tcp", Address: "localhost:6379"}},
		{"redis://redis:6380/3", Endpoint{Network: "tcp", Address: "redis:6380", DB: 3}},
		{"redis://:secret@redis:6379/0", Endpoint{Network: "tcp", Address: "redis:6379", Password: "secret"}},
		{"redis://user:p%40ss@h/2", Endpoint{Network: "tcp", Address: "h:6379", DB: 2, Username: "user", Password: "p@ss"}},
		{"redis://h/1?password=pw", Endpoint{Network: "tcp", Address: "h:6379", DB: 1, Password: "pw"}},
		{"redis://h?db=4", Endpoint{Network: "tcp", Address: "h:6379", DB: 4}},
		{"redis://[::1]:7000/5", Endpoint{Network: "tcp", Address: "[::1]:7000", DB: 5}},
		{"rediss://h:6380/0?ssl_cert_reqs=required", Endpoint{Network: "tcp", Address: "h:6380", TLS: true}},
		{"rediss://h/0?ssl_cert_reqs=CERT_NONE", Endpoint{Network: "tcp", Address: "h:6379", TLS: true, TLSSkipVerify: true}},
		{"rediss://h?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem", Endpoint{Network: "tcp", Address: "h:6379", TLS: true, TLSSkipVerify: true, TLSCAFile: "/ca.pem"}},
		{"unix:///var/run/redis.sock", Endpoint{Network: "unix", Address: "/var/run/redis.sock"}},
		{"unix:///var/run/redis.sock?db=2&password=x", Endpoint{Network: "unix", Address: "/var/run/redis.sock", DB: 2, Password: "x"}},
		{"socket:///tmp/r.sock?db=1", Endpoint{Network: "unix", Address: "/tmp/r.sock", DB: 1}},
		{"redis+socket:///tmp/r.sock", Endpoint{Network: "unix", Address: "/tmp/r.sock"}},
		{"REDIS://H/1", Endpoint{Network: "tcp", Address: "H:6379", DB: 1}},
		{"sentinel://s1", Endpoint{Network: "tcp", Sentinels: []string{"s1:26379"}}},
		{"sentinel://:pw@s1:26380/3;sentinel://s2:26381;sentinel://s3/7",
			Endpoint{Network: "tcp", DB: 3, Password: "pw", Sentinels: []string{"s1:26380", "s2:26381", "s3:26379"}}},
		{"SENTINEL://u:p%40w@[::1]/2;", Endpoint{Network: "tcp", DB: 2, Username: "u", Password: "p@w", Sentinels: []string{"[::1]:26379"}}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := ParseURL(tt.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseURL(%q)\n got %+v\nwant %+v", tt.url, got, tt.want)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	tests := []struct{ url, part string }{
		{"amqp://guest@rabbit//", "scheme"},
		{"localhost:6379", "scheme"},
		{"redis://h/abc", "db"},
		{"redis://h/-1", "db"},
		{"redis://h?db=x", "db"},
		{"redis://h:99999/0", "port"},
		{"redis://h:port/0", "syntax"},
		{"unix://", "path"},
		{"rediss://h?ssl_cert_reqs=maybe", "query"},
		{"redis://:sup3rsecret@h/x", "db"},
		{"sentinel://:sup3rsecret@s1/0;redis://h", "scheme"},
		{"sentinel://s1:0", "port"},
		{"sentinel://:sup3rsecret@s1/x;sentinel://s2", "db"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := ParseURL(tt.url)
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseURL(%q) error = %v, want *URLError", tt.url, err)
			}
			if ue.Part != tt.part {
				t.Errorf("Part = %q, want %q (%v)", ue.Part, tt.part, err)
			}
			if !errors.Is(err, ErrBadURL) {
				t.Errorf("error does not wrap ErrBadURL: %v", err)
			}
			if strings.Contains(err.Error(), "sup3rsecret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestEndpointStringMasksPassword(t *testing.T) {
	ep, err := ParseURL("redis://u:hunter2@h:1/2")
	if err != nil {
		t.Fatal(err)
	}
	if s := ep.String(); strings.Contains(s, "hunter2") || s != "redis://u:**@h:1/2" {
		t.Errorf("String() = %q", s)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"redis://", "redis://:pw@h:6379/3", "rediss://h?ssl_cert_reqs=none",
		"unix:///tmp/s.sock?db=2", "socket://x", "redis://h/%zz", "redis://[::1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseURL(s)
		if err != nil {
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("error is not *URLError: %v", err)
			}
			return
		}
		if ep.Network != "tcp" && ep.Network != "unix" || ep.Address == "" || ep.DB < 0 {
			t.Fatalf("bad endpoint %+v from %q", ep, s)
		}
	})
}
