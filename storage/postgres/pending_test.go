package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/omicsomics/omics-worker/storage"
)

// The pending-object protocol: the commit consumes the record atomically;
// a settled (doomed) record refuses the commit; a committed key cannot be
// doomed (so its object is never deleted).
func TestPendingObjectProtocol(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	// Recorded, uploaded, committed: the record is gone with the commit.
	raw := f.raw(t, "a.vcf")
	nf := f.processed(raw)
	nf.Pending = true
	if err := f.store.RecordPendingObject(ctx, raw.ID, "task-1", nf.ObjectKey); err != nil {
		t.Fatal(err)
	}
	list, err := f.store.PendingObjects(ctx, raw.ID, 10)
	if err != nil || len(list) != 1 || list[0].ObjectKey != nf.ObjectKey || list[0].TaskID != "task-1" || list[0].Doomed {
		t.Fatalf("PendingObjects = %+v, %v", list, err)
	}
	if _, err := f.store.SaveProcessed(ctx, raw, nf, nil); err != nil {
		t.Fatal(err)
	}
	if found, err := f.store.DoomPendingObject(ctx, nf.ObjectKey); err != nil || found {
		t.Fatalf("Doom after commit = %v, %v; want false (the object is referenced)", found, err)
	}

	// Recorded, then settled by someone else: the commit is refused and
	// writes nothing.
	raw2 := f.raw(t, "b.vcf")
	nf2 := f.processed(raw2)
	nf2.Pending = true
	if err := f.store.RecordPendingObject(ctx, raw2.ID, "task-2", nf2.ObjectKey); err != nil {
		t.Fatal(err)
	}
	if found, err := f.store.DoomPendingObject(ctx, nf2.ObjectKey); err != nil || !found {
		t.Fatalf("Doom = %v, %v", found, err)
	}
	rows := f.count(t)
	if _, err := f.store.SaveProcessed(ctx, raw2, nf2, nil); !errors.Is(err, storage.ErrObjectSettled) {
		t.Fatalf("SaveProcessed of a doomed object: %v, want storage.ErrObjectSettled", err)
	}
	if err := f.store.ForgetPendingObject(ctx, nf2.ObjectKey); err != nil {
		t.Fatal(err)
	}
	// Record gone entirely: still refused.
	if _, err := f.store.SaveProcessed(ctx, raw2, nf2, nil); !errors.Is(err, storage.ErrObjectSettled) {
		t.Fatalf("SaveProcessed of a forgotten object: %v, want storage.ErrObjectSettled", err)
	}
	if f.count(t) != rows {
		t.Error("a refused commit wrote rows")
	}
	if list, _ := f.store.PendingObjects(ctx, 0, 10); len(list) != 0 {
		t.Errorf("records left: %+v", list)
	}
}
