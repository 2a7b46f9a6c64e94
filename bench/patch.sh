#!/bin/sh
# Patch size, time and peak memory of binarydist against whole-file tools on
# the real worlds of ../shared/bench/worlds.sh, world-1 -> world-2 (a broad
# point-release update). Each result is checked (md5 of the rebuilt tar).
#   BENCH_TOOLS="binarydist xdelta3 zstd bsdiff"  which tools (bsdiff on a whole
#   tar needs ~17x its size in memory and minutes: drop it on small machines)
set -eu
cd "$(dirname "$0")/.."
worlds=${BINARYDIST_WORLDS:-/var/tmp/binarydist-worlds}
tools=${BENCH_TOOLS:-binarydist xdelta3 zstd bsdiff}
bin=$PWD/target/release/binarydist
[ -x "$bin" ] || cargo build --release
bash ../shared/bench/worlds.sh "$worlds" >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/binarydist-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
old=$work/DragonFly-world-x86_64-master-20260101T000000Z-w1.tar
new=$work/DragonFly-world-x86_64-master-20260102T000000Z-w2.tar
ln -s "$worlds/world-1.tar" "$old"
ln -s "$worlds/world-2.tar" "$new"
want=$(md5sum < "$new" | cut -c1-32)

# measure LABEL CMD...: runs CMD under /usr/bin/time, prints "seconds peak-MiB"
measure() {
	/usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/stderr"
	awk '{ printf "%8.1f s %7.0f MiB", $1, $2 / 1024 }' "$work/time"
}
row() { # row TOOL DIFF-MEASURE PATCH APPLY-MEASURE OUTPUT
	got=$(md5sum < "$5" | cut -c1-32)
	ok=OK; [ "$got" = "$want" ] || ok="WRONG OUTPUT"
	printf '%-12s %12d  diff %s  apply %s  %s\n' "$1" "$(wc -c < "$3")" "$2" "$4" "$ok"
	rm -f "$5"
}

echo "world-1 -> world-2: $(wc -c < "$old") -> $(wc -c < "$new") bytes of tar"
printf '%-12s %12s  %-26s  %-26s\n' tool "patch bytes" "diff time, peak RSS" "apply time, peak RSS"
for t in $tools; do
	case $t in
	binarydist)
		mkdir "$work/p"
		d=$(measure "$bin" diff "$old" "$new" -o "$work/p")
		p=$(ls "$work"/p/*.bdpatch)
		a=$(measure sh -c "'$bin' patch '$p' < '$old' > '$work/out'")
		row binarydist "$d" "$p" "$a" "$work/out" ;;
	xdelta3)
		d=$(measure xdelta3 -e -9 -f -B 1073741824 -s "$old" "$new" "$work/x.vcdiff")
		a=$(measure xdelta3 -d -f -B 1073741824 -s "$old" "$work/x.vcdiff" "$work/out")
		row xdelta3 "$d" "$work/x.vcdiff" "$a" "$work/out" ;;
	zstd)
		d=$(measure zstd -q -f -19 -T0 --long=29 --patch-from="$old" "$new" -o "$work/z.zst")
		a=$(measure zstd -q -f -d --long=29 --patch-from="$old" "$work/z.zst" -o "$work/out")
		row "zstd-19" "$d" "$work/z.zst" "$a" "$work/out" ;;
	bsdiff)
		d=$(measure bsdiff "$old" "$new" "$work/b.bsdiff")
		a=$(measure bspatch "$old" "$work/out" "$work/b.bsdiff")
		row bsdiff "$d" "$work/b.bsdiff" "$a" "$work/out" ;;
	*) echo "bench/patch.sh: unknown tool $t" >&2; exit 1 ;;
	esac
done
