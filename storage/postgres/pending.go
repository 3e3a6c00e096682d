package postgres

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/omicsomics/omics-worker/storage"
)

// Durable record of uploads not yet committed (pending.sql).
//
// Protocol (the caller owns the object store):
//
//  1. RecordPendingObject(raw, task, key) BEFORE uploading key;
//  2. upload; SaveProcessed with storage.NewFile.Pending set: the transaction
//     deletes the record together with inserting the processed row, and is
//     refused with storage.ErrObjectSettled when the record is gone or doomed;
//  3. to delete an uncommitted object (settle): DoomPendingObject(key) —
//     false means the record is gone (committed, or settled by someone
//     else): do NOT delete the object; true means no commit can reference
//     it any more: delete the object, then ForgetPendingObject(key).
//
// Every step is idempotent, so a crash anywhere leaves a record that a
// later run or a sweep settles.

//go:embed pending.sql
var pendingSQL string

// EnsurePendingTable creates omics_worker_pending_objects if missing. It
// is called by the pending-object methods on first use; concurrent
// creation by several workers is tolerated.
func (s *Store) EnsurePendingTable(ctx context.Context) error {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pendingReady {
		return nil
	}
	_, err := s.pool.Exec(ctx, pendingSQL)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "42P07") {
		err = nil // another worker created it at the same time
	}
	if err != nil {
		return fmt.Errorf("postgres: create omics_worker_pending_objects: %w", err)
	}
	s.pendingReady = true
	return nil
}

// RecordPendingObject records that taskID is about to upload key as the
// processed object of rawID.
func (s *Store) RecordPendingObject(ctx context.Context, rawID int64, taskID, key string) error {
	if err := s.EnsurePendingTable(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO omics_worker_pending_objects (object_key, raw_file_id, task_id) VALUES ($1, $2, $3)`,
		key, rawID, taskID)
	if err != nil {
		return fmt.Errorf("postgres: record pending object %s: %w", key, err)
	}
	return nil
}

// DoomPendingObject marks key's record doomed and reports whether it
// exists. After true, no commit links key: the caller may delete the
// object and then call ForgetPendingObject. After false the object must
// be left alone (a committed row may reference it).
func (s *Store) DoomPendingObject(ctx context.Context, key string) (bool, error) {
	if err := s.EnsurePendingTable(ctx); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE omics_worker_pending_objects SET doomed = true WHERE object_key = $1`, key)
	if err != nil {
		return false, fmt.Errorf("postgres: doom pending object %s: %w", key, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ForgetPendingObject deletes the doomed record of key (its object is
// gone).
func (s *Store) ForgetPendingObject(ctx context.Context, key string) error {
	if err := s.EnsurePendingTable(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM omics_worker_pending_objects WHERE object_key = $1 AND doomed`, key); err != nil {
		return fmt.Errorf("postgres: forget pending object %s: %w", key, err)
	}
	return nil
}

// PendingObjects lists the records of rawID (0: of every raw file), at
// most limit of them (oldest first).
func (s *Store) PendingObjects(ctx context.Context, rawID int64, limit int) ([]storage.PendingObject, error) {
	if err := s.EnsurePendingTable(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT object_key, raw_file_id, task_id, doomed,
		GREATEST(EXTRACT(EPOCH FROM now() - created_at), 0)::float8
		FROM omics_worker_pending_objects WHERE $1 = 0 OR raw_file_id = $1 ORDER BY created_at LIMIT $2`, rawID, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list pending objects: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.PendingObject, error) {
		var p storage.PendingObject
		var age float64
		err := r.Scan(&p.ObjectKey, &p.RawFileID, &p.TaskID, &p.Doomed, &age)
		p.Age = time.Duration(age * float64(time.Second))
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list pending objects: %w", err)
	}
	return out, nil
}

// consumePending deletes key's live record inside the commit transaction;
// storage.ErrObjectSettled when there is none.
func (s *Store) consumePending(ctx context.Context, tx pgx.Tx, key string) error {
	if err := s.EnsurePendingTable(ctx); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `DELETE FROM omics_worker_pending_objects WHERE object_key = $1 AND NOT doomed`, key)
	if err != nil {
		return fmt.Errorf("consume pending record: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", storage.ErrObjectSettled, key)
	}
	return nil
}
