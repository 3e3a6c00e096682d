#!/usr/bin/env bash
# Converter throughput and memory: `omics-worker convert` vs the Python
# Omicsomics conversion path on generated files (`make bench-convert`;
# docs/bench.md explains the method).
#
# Files (deterministic generators in processing/internal):
#   VCF        gen.VCF, SIZE (default 100M) uncompressed
#   CSV matrix matrixgen (gene_id + 12 sample columns), SIZE
#   FASTQ.gz   gen.FASTQGzip, SIZE of uncompressed FASTQ
# For each: wall time and peak RSS (/usr/bin/time), MB/s of the input file as
# stored (MiB on disk / s); for FASTQ.gz also of the uncompressed bytes.
#
# Python column (optional): the Python Omicsomics code copied, uncommitted,
# into ORACLE_DIR (default .oracle; spec/processing.md §10), run by
# testdata/interop/bench/py_convert.py with PY_ORACLE_PYTHON (default the
# `python3` on PATH, which must have pydantic v2). The Python path reads the
# whole file and builds every record as a pydantic model (RSS ≈ 100× the
# input), so by default it runs on a PY_SIZE (default 10M) file from the same
# generator and seed; PY_SIZE=full uses the same file as Go. FASTQ has no
# Python converter (stored raw), so that row has no Python column.
#
# BIG=1 adds a 1 GiB VCF (BIG_SIZE) run of the Go converter to show that RSS
# does not grow with the file size.
#
# TASK=1 (default) adds the whole file task (decrypt, convert, encrypt +
# SHA-256, store with fsync, commit) on a TASK_MB (default 100) MiB VCF next
# to the converter alone on the same bytes: worker/tasks BenchmarkProcessVCF
# in process (needs the test PostgreSQL; local-directory store), printed as
# MiB/s, MiB per CPU second and the ratio task/converter (issue 13's aim:
# >= 0.5 on wall time). A failure there is reported, not fatal.
#
# Environment: BIN [bin/omics-worker], SIZE [100M], PY_SIZE [10M],
# ORACLE_DIR [.oracle], PY_ORACLE_PYTHON [python3], BIG [0], BIG_SIZE [1G],
# TASK [1], TASK_MB [100],
# BENCH_DATA [a temporary directory; set it to keep/reuse the files].
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-bin/omics-worker}
SIZE=${SIZE:-100M}
PY_SIZE=${PY_SIZE:-10M}
ORACLE_DIR=${ORACLE_DIR:-$ROOT/.oracle}
PYO=${PY_ORACLE_PYTHON:-python3}
BIG=${BIG:-0}
BIG_SIZE=${BIG_SIZE:-1G}
TASK=${TASK:-1}
TASK_MB=${TASK_MB:-100}

if [[ ! -x $BIN ]]; then
	echo "bench-convert: building $BIN" >&2
	CGO_ENABLED=0 go build -trimpath -o "$BIN" ./cmd/omics-worker
fi
[[ -x /usr/bin/time ]] || { echo "bench-convert: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

if [[ -n ${BENCH_DATA:-} ]]; then
	DATA=$BENCH_DATA
	mkdir -p "$DATA"
	KEEP=1
else
	DATA=$(mktemp -d /tmp/omics-bench-convert.XXXXXX)
	KEEP=0
fi
GEN=$DATA/.bin
mkdir -p "$GEN"
cleanup() { [[ $KEEP == 1 ]] || rm -rf "$DATA"; }
trap cleanup EXIT
go build -o "$GEN/gendata" ./processing/internal/gen/gendata
go build -o "$GEN/genmatrix" ./processing/internal/matrixgen/genmatrix

# gen KIND SIZE -> path (cached in DATA)
gen() {
	local kind=$1 size=$2 f
	case $kind in
	vcf) f=$DATA/bench-$size.vcf ;;
	csv) f=$DATA/bench-$size.csv ;;
	fastq.gz) f=$DATA/bench-$size.fastq.gz ;;
	esac
	if [[ ! -s $f ]]; then
		case $kind in
		vcf) "$GEN/gendata" -format vcf -size "$size" -o "$f" 2>/dev/null ;;
		csv) "$GEN/genmatrix" -delim , -size "$size" -o "$f" 2>/dev/null ;;
		fastq.gz) "$GEN/gendata" -format fastq.gz -size "$size" -o "$f" 2>/dev/null ;;
		esac
	fi
	echo "$f"
}

mib() { awk -v b="$1" 'BEGIN{printf "%.1f", b/1048576}'; }

# measure CMD...: writes "seconds maxrss_kib cpu_seconds" (cpu = user+sys)
# to $DATA/.time; exits on failure.
measure() {
	if ! /usr/bin/time -o "$DATA/.time" -f '%e %M %U %S' "$@" >"$DATA/.out" 2>"$DATA/.err"; then
		echo "bench-convert: failed: $*" >&2
		cat "$DATA/.err" "$DATA/.out" >&2
		exit 1
	fi
	awk '{printf "%s %s %.2f\n", $1, $2, $3+$4}' "$DATA/.time" >"$DATA/.time2" && mv "$DATA/.time2" "$DATA/.time"
}

HAVE_PY=0
PY_NOTE=
if [[ -f $ORACLE_DIR/app/services/file_processor.py ]]; then
	if "$PYO" -c 'import pydantic, sys; sys.exit(0 if pydantic.VERSION.startswith("2") else 1)' 2>/dev/null; then
		HAVE_PY=1
	else
		PY_NOTE="Python column skipped: $PYO has no pydantic v2 (set PY_ORACLE_PYTHON)"
	fi
else
	PY_NOTE="Python column skipped: no Python oracle in $ORACLE_DIR (copy backend/app/{converters,schemas,services/file_processor.py} there, spec/processing.md §10)"
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$ROOT/bench-results
mkdir -p "$OUT"
RESULT=$OUT/bench-convert-$STAMP.json
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
ROWS=()
JSON=()

run_row() {
	local kind=$1 label=$2 size=$3 f bytes unz go_s go_rss go_cpu go_cpu_mbs go_mbs py_s= py_wall= py_rss= py_mbs= py_file= py_bytes=
	f=$(gen "$kind" "$size")
	bytes=$(stat -c %s "$f")
	unz=$bytes
	[[ $kind == fastq.gz ]] && unz=$(gzip -dc "$f" | wc -c)
	echo "== $label: $(mib "$bytes") MiB ($f)" >&2
	measure "$BIN" convert "$f" -o /dev/null -q
	read -r go_s go_rss go_cpu < <(tail -1 "$DATA/.time")
	go_mbs=$(awk -v b="$bytes" -v s="$go_s" 'BEGIN{printf "%.1f", (s>0)? b/1048576/s : 0}')
	# MiB per CPU second (user+sys): steadier than wall time on a shared box.
	go_cpu_mbs=$(awk -v b="$bytes" -v s="$go_cpu" 'BEGIN{printf "%.1f", (s>0)? b/1048576/s : 0}')
	echo "   go: $go_s s wall, $go_cpu s CPU, $go_mbs MiB/s (wall), $go_cpu_mbs MiB/CPU-s, peak RSS $(mib $((go_rss * 1024))) MiB" >&2
	[[ $kind == fastq.gz ]] && echo "   go: $(awk -v b="$unz" -v s="$go_s" 'BEGIN{printf "%.1f", (s>0)? b/1048576/s : 0}') MiB/s of uncompressed FASTQ ($(mib "$unz") MiB)" >&2
	if [[ $HAVE_PY == 1 && $kind != fastq.gz && ${4:-} != nopy ]]; then
		if [[ $PY_SIZE == full ]]; then py_file=$f; else py_file=$(gen "$kind" "$PY_SIZE"); fi
		py_bytes=$(stat -c %s "$py_file")
		measure "$PYO" "$ROOT/testdata/interop/bench/py_convert.py" "$ORACLE_DIR" "$py_file"
		read -r py_wall py_rss _ < <(tail -1 "$DATA/.time")
		# MiB/s from the script's own timer (reading + converting + JSON),
		# without the interpreter start-up and imports (~0.5 s).
		py_s=$(jq .seconds "$DATA/.out")
		py_mbs=$(awk -v b="$py_bytes" -v s="$py_s" 'BEGIN{printf "%.2f", (s>0)? b/1048576/s : 0}')
		echo "   python ($(mib "$py_bytes") MiB file): $py_s s ($py_wall s with start-up), $py_mbs MiB/s, peak RSS $(mib $((py_rss * 1024))) MiB; $(cat "$DATA/.out")" >&2
	fi
	local ratio=-
	[[ -n $py_mbs ]] && ratio=$(awk -v g="$go_mbs" -v p="$py_mbs" 'BEGIN{printf "%.1fx", (p>0)? g/p : 0}')
	ROWS+=("$(printf '%-22s %9s %9s %9s %10s %11s %9s %11s %8s' "$label" "$(mib "$bytes")" "$go_mbs" "$go_cpu_mbs" \
		"$(mib $((go_rss * 1024)))" "${py_mbs:--}" "$([[ -n $py_bytes ]] && mib "$py_bytes" || echo -)" \
		"$([[ -n $py_rss ]] && mib $((py_rss * 1024)) || echo -)" "$ratio")")
	JSON+=("$(jq -cn --arg lbl "$label" --arg kind "$kind" --argjson bytes "$bytes" --argjson unz "$unz" \
		--argjson go_s "$go_s" --argjson go_rss "$go_rss" --argjson go_cpu "$go_cpu" --arg py_s "$py_s" --arg py_rss "$py_rss" \
		--arg py_bytes "$py_bytes" \
		'{"label":$lbl, "kind":$kind, input_bytes:$bytes, uncompressed_bytes:$unz,
		  go:{seconds:$go_s, cpu_seconds:$go_cpu, peak_rss_kib:$go_rss, mib_per_s:(if $go_s>0 then $bytes/1048576/$go_s else null end),
		    mib_per_cpu_s:(if $go_cpu>0 then $bytes/1048576/$go_cpu else null end)},
		  python:(if $py_s=="" then null else {input_bytes:($py_bytes|tonumber), seconds:($py_s|tonumber),
		    peak_rss_kib:($py_rss|tonumber), mib_per_s:(($py_bytes|tonumber)/1048576/($py_s|tonumber))} end)}')")
}

run_row vcf "VCF" "$SIZE"
run_row csv "CSV matrix" "$SIZE"
run_row fastq.gz "FASTQ.gz" "$SIZE"
if [[ $BIG == 1 ]]; then
	run_row vcf "VCF (BIG)" "$BIG_SIZE" nopy
	rm -f "$DATA/bench-$BIG_SIZE.vcf"
fi
TASK_LINE=
TASK_JSON=null
if [[ $TASK == 1 ]]; then
	echo "== file task: $TASK_MB MiB VCF (go test -bench ProcessVCF ./worker/tasks)" >&2
	if BENCH_VCF_MB=$TASK_MB go test -run '^$' -bench 'ProcessVCF' -benchtime 2x -count 1 ./worker/tasks >"$DATA/.task" 2>&1; then
		# "BenchmarkProcessVCF/task-2  2  1811899834 ns/op  57.87 MB/s  54.02 MB/cpu-s ...": MB = 10^6 bytes.
		bm() { awk -v name="ProcessVCF/$1-" -v unit="$2" 'index($1, name) {for (i = 2; i < NF; i++) if ($(i+1) == unit) v = $i} END {if (v != "") printf "%.1f", v * 1e6 / 1048576}' "$DATA/.task"; }
		t_w=$(bm task MB/s) t_c=$(bm task MB/cpu-s) c_w=$(bm convert MB/s) c_c=$(bm convert MB/cpu-s)
		ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b>0)? a/b : 0}'; }
		TASK_LINE="file task, $TASK_MB MiB VCF: task $t_w MiB/s ($t_c MiB/CPU-s), converter alone $c_w MiB/s ($c_c MiB/CPU-s); task/converter $(ratio "$t_w" "$c_w") wall, $(ratio "$t_c" "$c_c") CPU"
		TASK_JSON=$(jq -cn --argjson mb "$TASK_MB" --argjson tw "$t_w" --argjson tc "$t_c" --argjson cw "$c_w" --argjson cc "$c_c" \
			'{input_mib:$mb, task:{mib_per_s:$tw, mib_per_cpu_s:$tc}, converter:{mib_per_s:$cw, mib_per_cpu_s:$cc},
			  ratio_wall:(if $cw>0 then $tw/$cw else null end), ratio_cpu:(if $cc>0 then $tc/$cc else null end)}')
	else
		TASK_LINE="file task skipped: the benchmark failed (PostgreSQL at 127.0.0.1:5432?): $(tail -3 "$DATA/.task" | tr '\n' ' ')"
	fi
	echo "   $TASK_LINE" >&2
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

printf '%-22s %9s %9s %9s %10s %11s %9s %11s %8s\n' "file" "MiB" "go MiB/s" "go /CPU-s" "go RSS MiB" "py MiB/s" "py MiB" "py RSS MiB" "go/py"
printf '%s\n' "${ROWS[@]}"
[[ -n $PY_NOTE ]] && echo "$PY_NOTE"
[[ $HAVE_PY == 1 && $PY_SIZE != full ]] && echo "python ran on a $PY_SIZE file from the same generator (PY_SIZE=full for the same file; its RSS is ~100x the input)"
[[ -n $TASK_LINE ]] && echo "$TASK_LINE"
echo "load average $LOAD_START at start, $LOAD_END at end; $(nproc) cores"

printf '%s\n' "${JSON[@]}" | jq -s --arg ls "$LOAD_START" --arg le "$LOAD_END" --arg cores "$(nproc)" \
	--arg note "$PY_NOTE" --arg pysize "$PY_SIZE" --argjson task "$TASK_JSON" \
	'{machine:{cores:$cores, loadavg_start:$ls, loadavg_end:$le}, python_size:$pysize, note:$note, rows:., file_task:$task}' >"$RESULT"
echo "results: $RESULT"
