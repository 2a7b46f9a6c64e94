#!/bin/sh
# fuzz/run.sh: the fuzz campaign's runner (make fuzz, make fuzz-cmin).
#
#   sh fuzz/run.sh run [TARGET...]    each target for FUZZ_SECONDS (default 60),
#                                     or FUZZ_RUNS executions if that comes first
#   sh fuzz/run.sh cmin [TARGET...]   minimize what runs found into fuzz/corpus
#
# Builds the targets with cargo fuzz (-s none: no sanitizer, so the stable
# toolchain builds them; the checks that matter here are panics, hangs and
# allocations, which libFuzzer sees without one). A run starts from the
# committed corpus (fuzz/corpus/TARGET), the seeds (fuzz/seeds/TARGET, from
# fuzz/seeds.sh) and what earlier runs found (FUZZ_WORK/TARGET, default
# /var/tmp/binarydist-fuzz: runs in parts add up), and appends one line per
# target to fuzz/results.tsv: UTC time, target, seconds, executions, findings,
# the commit the targets were built from. A finding stops the run; its input is in FUZZ_WORK/artifacts/TARGET/TIME.
# FUZZ_NO_BUILD=1 runs the targets as last built.
#
# The install target installs hostile archives, as root: it runs as root of a
# user namespace whose ids map to unprivileged ones (100000-165535), so that a
# path escape it finds cannot write over this machine. unshare(1) wants
# newuidmap for that; a root runner writes the maps itself (fuzz/newidmap/).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_WORK=${FUZZ_WORK:-/var/tmp/binarydist-fuzz}
FUZZ_NICE=${FUZZ_NICE:-19}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
# -1: no cap on executions (libFuzzer's -runs); a long run done in parts sets
# it to what is left to reach 10 million.
FUZZ_RUNS=${FUZZ_RUNS:--1}
ALL="names manifest tar gunzip install patch_header patch_apply index config journal"
mode=${1:-run}
[ $# -gt 0 ] && shift
targets=${*:-$ALL}
bin=$here/target/x86_64-unknown-linux-gnu/release

build() {
	(cd "$here" && nice -n "$FUZZ_NICE" cargo fuzz build -s none) >&2
	git -C "$here" rev-parse --short HEAD >"$bin/.commit"
	git -C "$here" status --porcelain -- ../src fuzz_targets src | grep -q . && sed -i 's/$/+dirty/' "$bin/.commit" || true
}

# As root of a user namespace mapped to unprivileged ids.
userns() {
	PATH=$here/newidmap:$PATH unshare --user --map-users=100000,0,65536 --map-groups=100000,0,65536 \
		--setuid 0 --setgid 0 "$@"
}

run_one() {
	t=$1
	work=$FUZZ_WORK/$t
	art=$FUZZ_WORK/artifacts/$t/$(date -u +%Y%m%dT%H%M%S)/
	mkdir -p "$work" "$art" "$here/corpus/$t"
	dirs="$work $here/corpus/$t"
	[ -d "$here/seeds/$t" ] && dirs="$dirs $here/seeds/$t"
	wrap=""
	if [ "$t" = install ] && [ "$(id -u)" = 0 ]; then
		chown -R 100000:100000 "$work" "$art"
		wrap=userns
	fi
	log=$FUZZ_WORK/$t.log
	scratch=$(mktemp -d /dev/shm/bdfuzz-run.XXXXXX)
	[ -n "$wrap" ] && chown 100000:100000 "$scratch"
	started=$(date +%s)
	built=$(cat "$bin/.commit" 2>/dev/null || git -C "$here" rev-parse --short HEAD)
	set +e
	# shellcheck disable=SC2086
	export BDFUZZ_SCRATCH="$scratch"
	$wrap nice -n "$FUZZ_NICE" "$bin/$t" -max_total_time="$FUZZ_SECONDS" -runs="$FUZZ_RUNS" -timeout=20 -rss_limit_mb="$FUZZ_RSS_MB" \
		-print_final_stats=1 -artifact_prefix="$art" $dirs >"$log" 2>&1
	rc=$?
	set -e
	rm -rf "$scratch"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	secs=$(($(date +%s) - started))
	findings=$(find "$art" -type f | wc -l)
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$t" "$secs" "${execs:-0}" "$findings" \
		"$built" >>"$here/results.tsv"
	printf 'fuzz %-13s %8s s %12s executions, %s findings\n' "$t" "${secs:-?}" "${execs:-?}" "$findings"
	if [ $rc -ne 0 ] || [ "$findings" -ne 0 ]; then
		tail -30 "$log" >&2
		echo "fuzz: $t: finding(s) in $art (log: $log)" >&2
		return 1
	fi
}

cmin_one() {
	t=$1
	new=$here/corpus/$t.new
	rm -rf "$new"
	mkdir -p "$new" "$FUZZ_WORK/$t" "$here/corpus/$t"
	dirs="$here/corpus/$t $FUZZ_WORK/$t"
	[ -d "$here/seeds/$t" ] && dirs="$dirs $here/seeds/$t"
	wrap=""
	if [ "$t" = install ] && [ "$(id -u)" = 0 ]; then
		chown -R 100000:100000 "$new"
		wrap=userns
	fi
	scratch=$(mktemp -d /dev/shm/bdfuzz-run.XXXXXX)
	[ -n "$wrap" ] && chown 100000:100000 "$scratch"
	# shellcheck disable=SC2086
	export BDFUZZ_SCRATCH="$scratch"
	$wrap nice -n "$FUZZ_NICE" "$bin/$t" -merge=1 -rss_limit_mb="$FUZZ_RSS_MB" -timeout=20 "$new" $dirs >"$FUZZ_WORK/$t.cmin.log" 2>&1
	rm -rf "$scratch"
	chown -R 0:0 "$new" 2>/dev/null || true
	rm -rf "$here/corpus/$t"
	mv "$new" "$here/corpus/$t"
	echo "cmin $t: $(find "$here/corpus/$t" -type f | wc -l) inputs, $(du -sk "$here/corpus/$t" | cut -f1) KiB"
}

[ -n "${FUZZ_NO_BUILD:-}" ] || build
status=0
for t in $targets; do
	case $mode in
	run) run_one "$t" || status=1 ;;
	cmin) cmin_one "$t" ;;
	*) echo "usage: $0 run|cmin [TARGET...]" >&2; exit 2 ;;
	esac
done
exit $status
