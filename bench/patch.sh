#!/bin/sh
# bench/patch.sh: binarydist against bsdiff/bspatch, xdelta3 -9 and
# zstd -19 --long --patch-from, in one run, on the real worlds of
# ../shared/bench/worlds.sh: world-1 -> world-2, world-2 -> world-3, the chain
# 1 -> 2 -> 3 against a direct 1 -> 3 patch. For each tool: patch size, diff
# time and peak RSS, apply time and peak RSS (/usr/bin/time -f '%e %M'),
# applied from the uncompressed old tar to an uncompressed new tar, and for
# binarydist also from the gzipped base (the only one that can). Every result
# is checked (MD5 of the rebuilt tar). It prints the table, writes it into
# README.md (between its bench/patch.sh markers) and draws bench/patch.svg.
# Floors on 1 -> 2 (issue 15): patch <= 0.88x bsdiff's size, diff <= 0.15x
# bsdiff's time and within the memory setting, apply from the plain tar
# <= 0.75x bspatch's time; exits non-zero if one fails. Not a test: run it on
# a quiet machine (bsdiff alone needs ~15 minutes and 3 GB a pair).
#   BENCH_TOOLS="bsdiff xdelta3 zstd binarydist"   which tools
#   BENCH_LOCK=FILE    take flock FILE around every measurement (shared machines)
#   BENCH_CACHE=DIR    reuse the other tools' patches and diff figures made by an
#                      earlier run on the same worlds (keyed by their VERSIONS)
#   BENCH_README=0     leave README.md and bench/patch.svg alone
#   BENCH_PRIORITY=0   do not raise the run's priority (bench/priority.sh)
#   BINARYDIST_BIN=PATH   the binarydist to measure (default: target/release)
set -eu
. "$(dirname "$0")/priority.sh"
cd "$(dirname "$0")/.."
repo=$PWD
worlds=${BINARYDIST_WORLDS:-/var/tmp/binarydist-worlds}
tools=${BENCH_TOOLS:-bsdiff xdelta3 zstd binarydist}
bd=${BINARYDIST_BIN:-$repo/target/release/binarydist}
[ -x "$bd" ] || cargo build --release
for t in bsdiff bspatch xdelta3 zstd python3 md5sum; do
	command -v $t >/dev/null || { echo "bench/patch.sh: needs $t (make test-deps installs it)" >&2; exit 1; }
done
[ -f "$worlds/world-3.tar" ] || bash ../shared/bench/worlds.sh "$worlds" >/dev/null
work=$(mktemp -d "${TMPDIR:-/var/tmp}/binarydist-bench-patch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
key=$(sha256sum < "$worlds/VERSIONS" | cut -c1-16)
cache=${BENCH_CACHE:+$BENCH_CACHE/$key}
[ -z "$cache" ] || mkdir -p "$cache"
results=$work/results.tsv
failed=0

# The worlds under dist names, which is what binarydist reads the patch name from.
name() { echo "DragonFly-world-x86_64-master-2026010${1}T000000Z-w$1"; }
tar_of() { echo "$work/$(name "$1").tar"; }
for i in 1 2 3; do ln -s "$worlds/world-$i.tar" "$(tar_of $i)"; done
md5() { md5sum < "$1" | cut -c1-32; }
want2=$(md5 "$worlds/world-2.tar")
want3=$(md5 "$worlds/world-3.tar")

# measure TIMEFILE CMD: runs the shell command CMD under /usr/bin/time (and the
# lock), leaving "seconds peak-KiB" in TIMEFILE; stops the run if CMD fails.
measure() {
	set -- "$1" "$2" /usr/bin/time -f "%e %M" -o "$1" sh -c "$2"
	shift 2
	if [ -n "${BENCH_LOCK:-}" ]; then set -- flock "$BENCH_LOCK" "$@"; fi
	"$@" >/dev/null 2>"$work/err" || { echo "bench/patch.sh: failed: $*" >&2; cat "$work/err" >&2; exit 1; }
}
fig() { tail -1 "$1"; } # "seconds KiB"
check() { # check OUTPUT WANT LABEL
	got=$(md5 "$1")
	rm -f "$1"
	[ "$got" = "$2" ] || { echo "bench/patch.sh: $3: WRONG OUTPUT (md5 $got, expected $2)" >&2; exit 1; }
}
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$results"; } # pair tool bytes diff apply

# diff_cmd TOOL OLD NEW PATCH / apply_cmd TOOL OLD PATCH OUT: each tool's commands.
diff_cmd() {
	case $1 in
	bsdiff) echo "bsdiff '$2' '$3' '$4'" ;;
	xdelta3) echo "xdelta3 -e -9 -f -B 1073741824 -s '$2' '$3' '$4'" ;;
	zstd) echo "zstd -q -f -19 -T0 --long=29 --patch-from='$2' '$3' -o '$4'" ;;
	esac
}
apply_cmd() {
	case $1 in
	bsdiff) echo "bspatch '$2' '$4' '$3'" ;;
	xdelta3) echo "xdelta3 -d -f -B 1073741824 -s '$2' '$3' '$4'" ;;
	zstd) echo "zstd -q -f -d --long=29 --patch-from='$2' '$3' -o '$4'" ;;
	esac
}

# anchor TOOL A B: diff world-A -> world-B with TOOL (or take it from the
# cache), then apply it; leaves the patch as $work/TOOL.A-B.
anchor() {
	p=$work/$1.$2-$3 d=$work/$1.$2-$3.diff
	if [ -n "$cache" ] && [ -s "$cache/$1.$2-$3" ] && [ -s "$cache/$1.$2-$3.diff" ]; then
		ln -s "$cache/$1.$2-$3" "$p"
		cp "$cache/$1.$2-$3.diff" "$d"
		echo "  $1 $2->$3: diff figures from $cache"
	else
		measure "$d" "$(diff_cmd "$1" "$(tar_of "$2")" "$(tar_of "$3")" "$p")"
		if [ -n "$cache" ]; then cp "$p" "$cache/$1.$2-$3" && cp "$d" "$cache/$1.$2-$3.diff"; fi
	fi
	measure "$work/a" "$(apply_cmd "$1" "$(tar_of "$2")" "$p" "$work/out")"
	if [ "$3" = 2 ]; then check "$work/out" "$want2" "$1 $2->$3"; else check "$work/out" "$want3" "$1 $2->$3"; fi
	row "$2-$3" "$1" "$(wc -c < "$p")" "$(fig "$d")" "$(fig "$work/a")"
}

# The chain 1 -> 2 -> 3 of another tool: its two patches applied one after the
# other through an intermediate file; times add up, the peak is the larger.
anchor_chain() {
	measure "$work/a1" "$(apply_cmd "$1" "$(tar_of 1)" "$work/$1.1-2" "$work/mid")"
	measure "$work/a2" "$(apply_cmd "$1" "$work/mid" "$work/$1.2-3" "$work/out")"
	rm -f "$work/mid"
	check "$work/out" "$want3" "$1 chain"
	bytes=$(($(wc -c < "$work/$1.1-2") + $(wc -c < "$work/$1.2-3")))
	apply=$(cat "$work/a1" "$work/a2" | awk '{ s += $1; if ($2 > m) m = $2 } END { print s, m }')
	row "1-2-3" "$1" "$bytes" "-" "$apply"
}

# binarydist: diff A B, apply from the plain tar (stdin to stdout, as the other
# tools write a plain file) and from the gzipped base.
binarydist_pair() {
	mkdir -p "$work/bd"
	measure "$work/d" "'$bd' diff '$(tar_of "$1")' '$(tar_of "$2")' -o '$work/bd'"
	p=$work/bd/$(name "$1")--$(name "$2").bdpatch
	measure "$work/a" "'$bd' patch '$p' < '$(tar_of "$1")' > '$work/out'"
	want=$want2; [ "$2" = 3 ] && want=$want3
	check "$work/out" "$want" "binarydist $1->$2"
	row "$1-$2" binarydist "$(wc -c < "$p")" "$(fig "$work/d")" "$(fig "$work/a")"
	measure "$work/a" "'$bd' patch '$p' --base '$work/$(name "$1").tar.gz' > '$work/out'"
	check "$work/out" "$want" "binarydist $1->$2 from .tar.gz"
	row "$1-$2" "binarydist, .tar.gz base" "-" "-" "$(fig "$work/a")"
}

# The gzipped bases, as binarydist writes them (an identity patch applied with
# -o NAME.tar.gz gives binarydist's own parallel gzip of the same tar).
gzip_bases() {
	mkdir -p "$work/id"
	for i in 1 2; do
		ln -s "$worlds/world-$i.tar" "$work/id/DragonFly-world-x86_64-master-2026010${i}T120000Z-w$i.tar"
		"$bd" diff "$(tar_of $i)" "$work/id/DragonFly-world-x86_64-master-2026010${i}T120000Z-w$i.tar" -o "$work/id" >/dev/null
		"$bd" patch "$work/id/$(name $i)--DragonFly-world-x86_64-master-2026010${i}T120000Z-w$i.bdpatch" \
			--base "$(tar_of $i)" -o "$work/gz.tar.gz"
		mv "$work/gz.tar.gz" "$work/$(name $i).tar.gz"
	done
}

load() { uptime | sed 's/.*load average: //'; }
echo "bench/patch.sh: $(nproc) cores, $bench_priority, load average $(load) (at the start)"
load_start=$(load)
for t in $tools; do
	case $t in
	bsdiff | xdelta3 | zstd)
		for pair in "1 2" "2 3" "1 3"; do anchor $t $pair; done
		anchor_chain $t ;;
	binarydist)
		gzip_bases
		for pair in "1 2" "2 3" "1 3"; do binarydist_pair $pair; done
		measure "$work/a" "'$bd' patch '$work/bd/$(name 1)--$(name 2).bdpatch' '$work/bd/$(name 2)--$(name 3).bdpatch' < '$(tar_of 1)' > '$work/out'"
		check "$work/out" "$want3" "binarydist chain"
		bytes=$(($(wc -c < "$work/bd/$(name 1)--$(name 2).bdpatch") + $(wc -c < "$work/bd/$(name 2)--$(name 3).bdpatch")))
		row "1-2-3" binarydist "$bytes" "-" "$(fig "$work/a")" ;;
	*) echo "bench/patch.sh: unknown tool $t" >&2; exit 1 ;;
	esac
done
load_end=$(load)
echo "bench/patch.sh: load average $load_end (at the end)"

# The table, the floors and the chart, from the results.
python3 bench/patch-report.py "$results" "$(uname -m), $(nproc) cores, $bench_priority; load average $load_start at the start, $load_end at the end" \
	"${BENCH_README:-1}" > "$work/report" || failed=1
cat "$work/report"
exit $failed
