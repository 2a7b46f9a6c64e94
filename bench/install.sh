#!/bin/sh
# bench/install.sh [WORKDIR]: times `binarydist install` of a world against
# `tar -xpf` of the same dist into an empty root, one run each, on the first
# world of ../shared/bench/worlds.sh (built under WORKDIR/worlds if missing).
# Target: install (streaming, staging, MD5+SHA-256 verification, journal,
# syncfs and renames included) within 1.5x of tar's time. tar is also timed
# with a sync after it, since install makes its result durable and tar does not.
# Both extract the same .tar.gz; each runs RUNS times (default 3) and the
# medians are compared. Needs root (owners), GNU tar, and what
# worlds.sh needs. Not a test: run it by hand, on a quiet machine.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$top/target/bench-install}
worlds=${WORLDS:-$work/worlds}
bd=${BINARYDIST:-$top/target/release/binarydist}
[ -x "$bd" ] || { echo "install.sh: no $bd: run make build" >&2; exit 1; }
mkdir -p "$work"
if [ ! -d "$worlds/world-1" ]; then
	echo "install.sh: building the worlds with ../shared/bench/worlds.sh (several hundred MB)"
	bash "$top/../shared/bench/worlds.sh" "$worlds"
fi
dists=$work/dists
if ! ls "$dists"/DragonFly-world-*.tar.gz >/dev/null 2>&1; then
	mkdir -p "$dists"
	"$bd" pack --stage "$worlds/world-1" --series world --arch x86_64 --branch bench \
	    --rev w1 --date 20260101T000000Z -o "$dists"
fi
dist=$(ls "$dists"/DragonFly-world-*.tar.gz)
size=$(gzip -l "$dist" | awk 'NR==2 {print $2}')

now() { date +%s.%N; }
fresh() { rm -rf "$work/root"; mkdir "$work/root"; sync; }

# Page-cache writeback from one run slows the next, whichever tool it is:
# each command runs RUNS times (default 3), alternating, and the medians count.
runs=${RUNS:-3}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
timed() { fresh; t0=$(now); "$@" >/dev/null; t1=$(now); echo "$t1 - $t0" | bc; }
tar_sync() { tar -xpf "$dist" -C "$work/root"; sync; }
: > "$work/times"
i=0
while [ $i -lt "$runs" ]; do
	echo "tar $(timed tar -xpf "$dist" -C "$work/root")" >> "$work/times"
	echo "tarsync $(timed tar_sync)" >> "$work/times"
	echo "install $(timed "$bd" install --root "$work/root" --make true "$dist")" >> "$work/times"
	i=$((i + 1))
done
tar_s=$(awk '$1 == "tar" { print $2 }' "$work/times" | median)
tarsync_s=$(awk '$1 == "tarsync" { print $2 }' "$work/times" | median)
inst_s=$(awk '$1 == "install" { print $2 }' "$work/times" | median)
rm -rf "$work/root"

echo "world: $dist ($size bytes of tar)"
echo "medians of $runs runs each:"
printf 'tar -xpf           %6.2f s\n' "$tar_s"
printf 'tar -xpf; sync     %6.2f s\n' "$tarsync_s"
printf 'binarydist install %6.2f s  (%.2fx tar, %.2fx tar+sync; target <= 1.5x tar)\n' "$inst_s" \
    "$(echo "$inst_s / $tar_s" | bc -l)" "$(echo "$inst_s / $tarsync_s" | bc -l)"
