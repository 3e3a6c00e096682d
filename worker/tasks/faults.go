package tasks

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/worker"
)

// Worker-side faults: the worker's own temporary storage (--tmp-dir: the
// processed document and the record spool) failing. They are never blamed
// on the user's file: FAILURE/RETRY OSError with a message naming the
// worker, processing_info is not written, and the errors that can clear by
// themselves (space, quota, descriptors, memory) are retried like an
// infrastructure outage.

// isLocalFault reports whether err is a fault of the worker's temporary
// storage: an output/spool error of the converter (processing.ErrOutput).
func isLocalFault(err error) bool {
	return errors.Is(err, processing.ErrOutput)
}

// localFault turns a fault of the worker's temporary storage during op
// into an OSError: transient (retried) when it can clear, else permanent.
// Neither writes processing_info on the raw row.
func (p *Processor) localFault(err error, format string, a ...any) error {
	what, transient := localFaultKind(err)
	detail := strings.Join(strings.Fields(err.Error()), " ")
	py := &worker.PyError{Type: "OSError", Module: "builtins", Err: err,
		Args: []any{fmt.Sprintf("worker %s while %s: %s", what, fmt.Sprintf(format, a...), detail)}}
	if transient {
		return worker.Transient(py)
	}
	return py
}

// localFaultKind names a fault of the worker's temporary storage and says
// whether it may clear by itself.
func localFaultKind(err error) (what string, transient bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return "temporary storage error", false
	}
	switch errno {
	case syscall.ENOSPC:
		return "temporary storage full", true
	case syscall.EDQUOT:
		return "temporary storage quota exceeded", true
	case syscall.EMFILE, syscall.ENFILE:
		return "out of file descriptors", true
	case syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR:
		return "temporarily out of resources", true
	case syscall.EROFS:
		return "temporary storage is read-only", false
	case syscall.EIO:
		return "temporary storage I/O error", false
	case syscall.EACCES, syscall.EPERM:
		return "temporary storage not writable", false
	case syscall.ENOENT, syscall.ENOTDIR:
		return "temporary directory missing", false
	}
	return "temporary storage error", false
}
