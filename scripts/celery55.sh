#!/usr/bin/env bash
# celery55.sh — a minimal Debian trixie root with celery 5.5 / kombu 5.5 /
# redis-py 6 (Debian's packages), for the tests that drive the real Python
# side with the Celery version that `pip install celery[redis]` gives today.
#
#   scripts/celery55.sh ensure            build the root once (reused when present)
#   scripts/celery55.sh path              print the root directory
#   scripts/celery55.sh unmount           undo the bind mounts it made
#   scripts/celery55.sh python3 ARGS...   run python3 inside it, in the current
#                                         directory, with the project and /tmp
#                                         visible at the same paths
#
# The root lives outside the work tree (default /var/cache/omics-worker/
# celery55; OMICS_CELERY55_ROOT overrides), so a fresh clone on the same
# machine reuses it. The mirror is read from this machine's own apt sources.
# Needs root (debootstrap, chroot, bind mounts).
set -euo pipefail

ROOT=${OMICS_CELERY55_ROOT:-/var/cache/omics-worker/celery55}
PROJECT=$(cd "$(dirname "$0")/.." && pwd)

mirror() {
	local m=""
	if [ -f /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
	fi
	if [ -z "$m" ]; then
		echo "celery55.sh: no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}" >&2
		exit 1
	fi
	echo "$m"
}

# unmount_all DIR: undo the bind mounts under DIR (deepest first), so that
# removing DIR can never reach the host's /tmp, /dev or the project.
unmount_all() {
	local d=$1
	awk -v d="$d" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
		umount -l "$m" || true
	done
}

ensure() {
	if [ -f "$ROOT/.omics-complete" ]; then
		return 0
	fi
	if ! command -v debootstrap >/dev/null 2>&1; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
	fi
	local m tmp
	m=$(mirror)
	tmp="$ROOT.building"
	unmount_all "$tmp"
	rm -rf --one-file-system "$tmp"
	mkdir -p "$(dirname "$ROOT")"
	echo "celery55.sh: building the celery 5.5 root in $ROOT (about a minute, ~400 MB)" >&2
	debootstrap --variant=minbase --include=python3-celery,python3-redis trixie "$tmp" "$m" >"$tmp.log" 2>&1 || {
		tail -20 "$tmp.log" >&2
		exit 1
	}
	# --include does not resolve these packages' virtual dependencies.
	chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		python3-cryptography python3-psycopg2 python3-amqp >>"$tmp.log" 2>&1 || {
		tail -20 "$tmp.log" >&2
		exit 1
	}
	chroot "$tmp" apt-get clean
	chroot "$tmp" python3 -c 'import celery, kombu, redis; print("celery", celery.__version__, "kombu", kombu.__version__, "redis", redis.__version__)' >&2
	touch "$tmp/.omics-complete"
	unmount_all "$ROOT"
	rm -rf --one-file-system "$ROOT"
	mv "$tmp" "$ROOT"
	rm -f "$tmp.log"
}

# bind DIR: make DIR of the host visible at the same path inside the root.
bind() {
	local d=$1
	mkdir -p "$ROOT$d"
	if ! mountpoint -q "$ROOT$d"; then
		mount --bind "$d" "$ROOT$d"
	fi
}

run_python() {
	ensure
	bind /proc
	bind /dev
	bind /dev/shm
	bind /tmp
	bind "$PROJECT"
	local tmpdir=${TMPDIR:-}
	if [ -n "$tmpdir" ] && [ -d "$tmpdir" ] && [ "${tmpdir#/tmp}" = "$tmpdir" ]; then
		bind "$tmpdir"
	fi
	local cwd=$PWD
	case "$cwd" in
	"$PROJECT"* | /tmp*) ;;
	*) bind "$cwd" ;;
	esac
	exec chroot "$ROOT" env -C "$cwd" python3 "$@"
}

case "${1:-}" in
ensure) ensure ;;
unmount) unmount_all "$ROOT" ;;
path) echo "$ROOT" ;;
python3)
	shift
	run_python "$@"
	;;
*)
	echo "usage: $0 ensure | path | python3 ARGS..." >&2
	exit 2
	;;
esac
