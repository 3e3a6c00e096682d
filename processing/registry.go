package processing

import (
	"fmt"
	"sort"
	"sync"
)

type regKey struct {
	omics  OmicsType
	format string
}

var (
	regMu    sync.RWMutex
	registry = map[regKey]Converter{}
)

// Register makes c the converter for (omics, format). Format sub-packages
// call it from init, so a blank import (see processing/all) enables them.
// format is matched case-insensitively. Registering the same pair twice
// panics (a programming error detected at start-up, inside init).
func Register(omics OmicsType, format string, c Converter) {
	if c == nil {
		panic("processing: Register with nil converter")
	}
	k := regKey{omics, pyLower(format)}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[k]; dup {
		panic(fmt.Sprintf("processing: converter for %s/%s registered twice", omics, format))
	}
	registry[k] = c
}

// Lookup returns the converter registered for (omics, format).
func Lookup(omics OmicsType, format string) (Converter, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	c, ok := registry[regKey{omics, pyLower(format)}]
	return c, ok
}

// Registered lists the registered "omics/format" pairs, sorted.
func Registered() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, string(k.omics)+"/"+k.format)
	}
	sort.Strings(out)
	return out
}
