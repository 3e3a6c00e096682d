package main

import "github.com/omicsomics/omics-worker/internal/pyfmt"

// newTaskID is a fresh Celery task id (str(uuid.uuid4())) for the tests.
func newTaskID() string { return pyfmt.NewUUID4().String() }
