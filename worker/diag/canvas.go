package diag

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/omicsomics/omics-worker/worker"
)

// Canvas tasks: small integer arithmetic for link/chain/chord tests, the
// same in testdata/interop/diag_tasks.py.
const (
	Add  = "diag.add"
	Mul  = "diag.mul"
	XSum = "diag.xsum"
)

func registerCanvas(reg *worker.Registry) error {
	for _, t := range []struct {
		name string
		h    worker.Handler
		opts worker.TaskOptions
	}{
		{Add, add, worker.TaskOptions{Params: []string{"x", "y"}}},
		{Mul, mul, worker.TaskOptions{Params: []string{"x", "y"}}},
		{XSum, xsum, worker.TaskOptions{Params: []string{"numbers"}}},
	} {
		if err := reg.Register(t.name, t.h, t.opts); err != nil {
			return fmt.Errorf("diag: %w", err)
		}
	}
	return nil
}

func twoInts(t *worker.Task) (int64, int64, error) {
	x, err := t.IntArg("x")
	if err != nil {
		return 0, 0, err
	}
	y, err := t.IntArg("y")
	return x, y, err
}

// add(x, y) -> x + y
func add(_ context.Context, t *worker.Task) (any, error) {
	x, y, err := twoInts(t)
	return x + y, err
}

// mul(x, y) -> x * y
func mul(_ context.Context, t *worker.Task) (any, error) {
	x, y, err := twoInts(t)
	return x * y, err
}

// xsum(numbers) -> sum(numbers) (integers)
func xsum(_ context.Context, t *worker.Task) (any, error) {
	v, ok := t.Arg("numbers")
	if !ok {
		return nil, worker.PyErrorf("TypeError", "xsum() missing 1 required positional argument: 'numbers'")
	}
	l, ok := v.([]any)
	if !ok {
		return nil, worker.PyErrorf("TypeError", "'%T' object is not iterable", v)
	}
	var s int64
	for _, x := range l {
		n, ok := x.(json.Number)
		if !ok {
			return nil, worker.PyErrorf("TypeError", "unsupported operand type(s) for +: 'int' and '%T'", x)
		}
		i, err := n.Int64()
		if err != nil {
			return nil, worker.PyErrorf("TypeError", "xsum: %s is not an integer", n)
		}
		s += i
	}
	return s, nil
}
