// Package pyfmt is the one place where the worker emulates Python 3.11
// built-ins byte for byte, so that what a Python peer (the FastAPI app,
// the celery CLI, Flower, the Python converters) reads from us is what
// Python itself would have written:
//
//   - numbers: int() (ParseInt, ParseIntErr, ParseBigInt), float()
//     (ParseFloat) and repr(float) (FormatFloat, AppendFloat);
//   - strings: str.strip() and str.isspace() (Strip, StripBytes, IsSpace),
//     str.lower() (PyLower) and repr(str) (ReprString, AppendReprString);
//   - json.dumps with ensure_ascii (AppendJSONString,
//     AppendJSONStringContent, AppendJSONRune, AppendJSONFloat,
//     AppendIndent);
//   - datetime.isoformat(), aware and naive (FormatISO, FormatISONaive,
//     AppendISONaive);
//   - uuid.uuid4() (NewUUID4, UUID.String, UUID.Hex);
//   - bool() of a json.loads value (Truthy).
//
// It imports only the standard library, so protocol and processing may
// use it. Every function is checked against values produced by
// /usr/bin/python3 (testdata/golden.jsonl, regenerated with
// `go test ./internal/pyfmt -run TestPython -update`).
package pyfmt
