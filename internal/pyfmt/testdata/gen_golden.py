#!/usr/bin/python3
"""Writes golden.jsonl: what CPython answers for every built-in that
internal/pyfmt emulates. One JSON object a line: {"op", "in", "want"}.

Run by `go test ./internal/pyfmt -run TestPython -update` (or by hand:
/usr/bin/python3 gen_golden.py > golden.jsonl). Our own code; the inputs
are hand-picked edge cases plus a seeded random sample.
"""
import datetime
import json
import math
import random
import struct
import sys
import uuid

ERR = "error"
out = []


def case(op, inp, want):
    out.append({"op": op, "in": inp, "want": want})


def try_(f, s):
    try:
        return f(s)
    except (ValueError, OverflowError):
        return ERR


rnd = random.Random(20240501)

# repr(float): the input is float.hex() (exact), so no parsing is involved.
floats = [0.0, -0.0, 1.0, -1.0, 0.1, 0.2 + 0.1, 1 / 3, 30.0, 100.0, 1e-4, 1e-5,
          1.5e-5, 123456789012345.0, 1e15, 999999999999999.9, 1e16, 1.5e16,
          12345678901234567.0, 2.0 ** 53, 2.0 ** 63, 1e22, 1e23, 1.7976931348623157e308,
          5e-324, 2.2250738585072014e-308, 1.5e300, -1.5e-300, 0.000123, 9.999999999999999e-05,
          math.pi, -math.e, 4.35, 0.3, 1e100, 123.456, float("inf"), float("-inf"), float("nan")]
for _ in range(200):
    floats.append(struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0])
for _ in range(100):
    floats.append(round(rnd.uniform(-1e6, 1e6), rnd.randrange(0, 8)))
for f in floats:
    if math.isnan(f):
        f = float("nan")  # one NaN: repr ignores its sign and payload
    case("repr_float", f.hex(), repr(f))
    if math.isfinite(f):
        case("json_float", f.hex(), json.dumps(f))

# float(): the answer is the repr of the result, or "error".
float_in = ["1_0", "1__0", "_1", "1_", "٣", "1_0.5", "1_.5", "1._5", "1e1_0", "1_e5",
            "i_nf", "-inf", "infinity", "INFinity", "+Inf", "infinitx", "1e400",
            "-1e400", ".5", "5.", ".", "e5", "1e", "0x10", "0x1p3", "1.5e+300", " 1 ",
            "\x1c1\x1f", "１２", "\u00851", "\u00a01 ", "\u30001", "\v1\f", "1\x00",
            "٣_٣", "𝟏𝟐", "1e٣", "４.５e１", "", "NA", "-0", "1e-400", "100", "30.0",
            " 7 ", "1e3", "1,5", "--1", "+", "nan1", "1 2", "0.1", "nan", "-nan",
            "NaN", " 2.5\n", "1e+5", "1E-5", "00012", "1.7976931348623159e308"]
for s in float_in:
    r = try_(float, s)
    case("float", s, r if r == ERR else repr(r))

# int() in base 10: the decimal text of the result, or "error".
int_in = ["007", "+7", "-0", "1_000", "1__0", " 12 ", "٣", "1.0", "", "\x1c1",
          "\u00851", "1\x00", "٣_٣", "𝟏𝟐", "+", "-", "9223372036854775807",
          "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
          "9" * 30, "abc", "1e3", "0x10", "_1", "1_", "0_0", "-00", " -1_2 "]
for s in int_in:
    r = try_(int, s)
    case("int", s, r if r == ERR else str(r))

# str methods and repr(str) / json.dumps(str).
texts = ["", "abc", "  a b  ", "\t\n\x0b\x0c\r x \x1c\x1d\x1e\x1f", "\x85a\xa0",
         "\u2028\u2029\u3000y\u200b", "it's", 'say "hi"', "both ' and \"", "back\\slash",
         "\x00\x07\x1b\x7f", "\x80\x9f\xa0\xad\xff", "é中\U0001F600", "\ufeffgene_id",
         "\u200e\u202e", "\ue000\U000F0000", "\U0001D7CF", "</>&", "\b\f",
         "POSİTION", "ΟΔΟΣ", "ΟΔΟΣ.", "Σ", "aΣb", "ΑΣ'", "ẞ", "ǅ", "ﬃ", "Ω", "K",
         "MZML", "mzML", "GENE_ID", "ⅫⅣ"]
for s in texts:
    case("strip", s, s.strip())
    case("lower", s, s.lower())
    case("repr_str", s, repr(s))
    case("json_str", s, json.dumps(s))

# datetime.isoformat(): input [y, mo, d, h, mi, s, us, utcoffset seconds or null].
stamps = [[2024, 5, 1, 12, 0, 0, 0, None], [2024, 5, 1, 12, 0, 0, 123456, None],
          [1999, 12, 31, 23, 59, 59, 1, None], [2024, 2, 29, 0, 0, 0, 100, 0],
          [2024, 5, 1, 12, 0, 0, 0, 0], [2024, 5, 1, 12, 0, 0, 500000, 19800],
          [2024, 5, 1, 12, 0, 0, 0, -18000], [2024, 5, 1, 12, 0, 0, 7, 3723],
          [2024, 5, 1, 12, 0, 0, 0, -3723], [1, 1, 1, 0, 0, 0, 0, None],
          [9999, 12, 31, 23, 59, 59, 999999, 86399]]
for st in stamps:
    tz = None if st[7] is None else datetime.timezone(datetime.timedelta(seconds=st[7]))
    case("isoformat", st, datetime.datetime(*st[:7], tzinfo=tz).isoformat())

# uuid.UUID(bytes=b, version=4): input 32 hex digits of b; want [str, hex].
raw = [bytes(16), b"\xff" * 16, bytes(range(16))] + [rnd.randbytes(16) for _ in range(20)]
for b in raw:
    u = uuid.UUID(bytes=b, version=4)
    case("uuid4", b.hex(), [str(u), u.hex])

# bool(json.loads(text)).
for doc in ["null", "false", "true", "0", "1", "-0", "0.0", "-0.0", "1e-400", "1e999",
            "0e5", "\"\"", "\" \"", "\"0\"", "[]", "[0]", "{}", "{\"a\":0}",
            "100000000000000000000000", "0.000001"]:
    case("truthy", doc, bool(json.loads(doc)))

for c in out:
    sys.stdout.write(json.dumps(c, ensure_ascii=False) + "\n")
