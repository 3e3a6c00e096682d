package postgres

import (
	"context"
	"testing"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
)

// TestConfigErrorsHideSecrets: a refused DATABASE_URL is named in the
// error with its password masked (issue 9 #5).
func TestConfigErrorsHideSecrets(t *testing.T) {
	for _, u := range []string{
		"postgresql+asyncpg://admin:" + masktest.PercentPassword + "@db/x",
		"postgresql://admin:" + masktest.Password + "@db:port/x",
		"mysql://admin:" + masktest.Password + "@db/x",
	} {
		_, err := ParseDatabaseURL(u)
		if err == nil {
			t.Errorf("%s: accepted", u)
			continue
		}
		masktest.Check(t, "ParseDatabaseURL error", err.Error())
		if _, err := Open(context.Background(), u); err != nil {
			masktest.Check(t, "postgres.Open error", err.Error())
		}
	}
}
