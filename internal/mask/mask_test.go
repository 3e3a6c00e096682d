package mask

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// testSecret is the distinctive password of these tests.
const testSecret = "Pw%zzS3cr3t"

func TestURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"redis://localhost:6379/0", "redis://localhost:6379/0"},
		{"redis://:hunter2@h:1/2", "redis://:**@h:1/2"},
		{"redis://u:hunter2@h:1/2", "redis://u:**@h:1/2"},
		{"redis://u@h/0", "redis://u@h/0"},
		{"postgresql+asyncpg://postgres:p%40ss@db:5432/omics", "postgresql+asyncpg://postgres:**@db:5432/omics"},
		// Unencoded '%': does not parse, so the user goes too.
		{"postgresql://admin:" + testSecret + "@db/x", "postgresql://**@db/x"},
		// '@' and '/' inside the password: the last '@' ends it.
		{"postgres://u:a@b/c@db/x", "postgres://u:**@db/x"},
		{"http://minio:s3cr3t@minio:9000", "http://minio:**@minio:9000"},
		{"redis://h/0?password=hunter2&db=1", "redis://h/0?password=**&db=1"},
		{"postgres://h/db?sslpassword=hunter2", "postgres://h/db?sslpassword=**"},
		{"host=db user=u password=hunter2 dbname=x", "host=db user=u password=** dbname=x"},
		{"host=db password='hun ter2' dbname=x", "host=db password=** dbname=x"},
		{"file:///var/data", "file:///var/data"},
		{"rediss://user:pw@h/1", "rediss://user:**@h/1"},
		{"unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"},
		{"", ""},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	for _, in := range []string{
		`connect "postgres://u:` + testSecret + `@db/x": refused`,
		"endpoint http://k:" + testSecret + "@minio:9000, retrying",
		"broker (redis://:" + testSecret + "@h:1/0) down",
		"cannot parse `host=db password=" + testSecret + "`",
	} {
		got := Text(in)
		if strings.Contains(got, testSecret) || strings.Contains(got, "zz") {
			t.Errorf("Text(%q) = %q: secret shown", in, got)
		}
	}
	if got := Text("no url here"); got != "no url here" {
		t.Errorf("Text changed plain text: %q", got)
	}
}

func TestParse(t *testing.T) {
	for _, raw := range []string{
		"postgresql://admin:" + testSecret + "@db/x",
		"postgres://admin:ab:cd/ef@db/x",
		"redis://u:" + testSecret + "@h:xyz/0",
	} {
		_, err := Parse(raw)
		if err == nil {
			continue
		}
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q): %T, want *url.Error", raw, err)
		}
		if s := err.Error(); strings.Contains(s, testSecret) || strings.Contains(s, "%zz") || strings.Contains(s, "cd/ef") {
			t.Errorf("Parse(%q) error %q shows the secret", raw, s)
		}
	}
	if _, err := Parse("postgresql://admin:" + testSecret + "@db/x"); err == nil {
		t.Fatal("an unencoded % parsed")
	}
}

func TestError(t *testing.T) {
	base := errors.New("base")
	err := Error(fmt.Errorf("dial http://k:%s@h: %w", testSecret, base))
	if strings.Contains(err.Error(), testSecret) || !errors.Is(err, base) {
		t.Errorf("Error: %q, Is(base) %v", err, errors.Is(err, base))
	}
	if Error(nil) != nil || Error(base) != base { //nolint:errorlint // identity: an error without a URL is returned as it is
		t.Error("Error changed an error without a URL")
	}
}

// FuzzURL: whatever the password (unencoded %, @, /, :, quotes), neither
// URL nor Text shows it.
func FuzzURL(f *testing.F) {
	for _, s := range []string{testSecret, "p@ss/w:rd", "100%sure", `q"uo'te`, "a#b?c", "%zz%", "x@y@z"} {
		f.Add("postgresql+asyncpg", s)
		f.Add("redis", s)
	}
	f.Fuzz(func(t *testing.T, scheme, pw string) {
		if len(pw) < 6 || strings.ContainsAny(pw, " \t\r\n\v\f") {
			return
		}
		shape := scheme + "://user:@dbhost:5432/omics?sslmode=disable"
		if strings.Contains(shape, pw) || strings.Contains(scheme, "://") {
			return
		}
		u := scheme + "://user:" + pw + "@dbhost:5432/omics?sslmode=disable"
		if got := URL(u); strings.Contains(got, pw) {
			t.Errorf("URL(%q) = %q", u, got)
		}
		if got := Text("connect " + u + ": refused"); strings.Contains(got, pw) {
			t.Errorf("Text shows %q: %q", pw, got)
		}
	})
}
