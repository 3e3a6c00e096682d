// Package mask hides secrets in URLs before they reach a log line, an
// error, a task result or a remote-control reply. URL is the one masking
// function of the project (celery's maybe_sanitize_url: the password
// becomes "**"); Text, Parse and Error apply it to free text, to parse
// errors and to error chains. Standard library only, so that every
// package (protocol/transport/redistransport, storage/postgres, storage/s3, cmd) can use it.
package mask

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Secret is what a password is replaced by, as in celery's
// maybe_sanitize_url.
const Secret = "**"

// passwordParam matches a password given as a query parameter
// (?password=, &sslpassword=) or as a libpq keyword/value pair
// (password=... or password='...').
var passwordParam = regexp.MustCompile(`(?i)((?:^|[?&;\s])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&#\s]*)`)

// URL returns u with its password replaced by "**":
//
//	redis://user:secret@host:6379/0 -> redis://user:**@host:6379/0
//
// and any password=/sslpassword= parameter masked too. A URL that does not
// parse is masked conservatively: everything between "://" and the last
// "@" (user name included) becomes "**", since its boundaries are unsure.
// A string without "://" is treated as a keyword/value DSN.
func URL(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return maskParams(u)
	}
	head, rest := u[:i+3], u[i+3:]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, _, hasPw := strings.Cut(rest[:at], ":")
		switch {
		case !parses(u) || strings.ContainsAny(user, "/?#"):
			rest = Secret + rest[at:]
		case hasPw:
			rest = user + ":" + Secret + rest[at:]
		}
	}
	return head + maskParams(rest)
}

func parses(u string) bool {
	_, err := url.Parse(u)
	return err == nil
}

func maskParams(s string) string {
	if !strings.Contains(strings.ToLower(s), "password") {
		return s
	}
	return passwordParam.ReplaceAllString(s, "${1}"+Secret)
}

// urlInText finds URL-like tokens: whatever stands before "://" (not only
// valid schemes: conservative), "://" and everything up to the next white
// space. Opening quotes and brackets are left out of the token.
var urlInText = regexp.MustCompile("[^\\s\"'`(<\\[{=]*://\\S*")

// Text masks every URL in s with URL, for error texts written by other
// libraries. Closing punctuation after a URL ("`),;. ) is kept as it is.
func Text(s string) string {
	if !strings.Contains(s, "://") && !strings.Contains(strings.ToLower(s), "password") {
		return s
	}
	s = urlInText.ReplaceAllStringFunc(s, func(tok string) string {
		core := strings.TrimRight(tok, "\"'`),;.:]>")
		return URL(core) + tok[len(core):]
	})
	return maskParams(s)
}

// Parse is url.Parse whose error never shows a secret: the *url.Error
// carries the masked URL, and the reason names the problem without
// quoting the offending characters (an invalid escape "%zz" or port
// ":xyz" may be part of a password).
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err == nil {
		return u, nil
	}
	var ue *url.Error
	reason := err
	if errors.As(err, &ue) {
		reason = ue.Err
	}
	return nil, &url.Error{Op: "parse", URL: URL(raw), Err: errors.New(parseReason(reason))}
}

var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

func parseReason(err error) string {
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return `invalid URL escape (write a literal "%" as %25)`
	case errors.As(err, &host):
		return "invalid character in host name"
	}
	return quoted.ReplaceAllString(err.Error(), `"`+Secret+`"`)
}

// Error returns err with every URL of its text masked (see Text); errors.Is
// and errors.As still see err. It returns nil for nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	masked := Text(msg)
	if masked == msg {
		return err
	}
	return &maskedError{msg: masked, err: err}
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }
