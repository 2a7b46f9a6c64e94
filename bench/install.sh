#!/bin/sh
# bench/install.sh [WORKDIR]: times `binarydist install` of a world against
# `tar -xpf` of the same dist into an empty root, one run each, on the first
# world of ../shared/bench/worlds.sh (built under WORKDIR/worlds if missing).
# Target: install (streaming, staging, MD5+SHA-256 verification, journal,
# syncfs and renames included) within 1.5x of tar's time. tar is also timed
# with a sync after it, since install makes its result durable and tar does not.
# Both extract the same .tar.gz. Needs root (owners), GNU tar, and what
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

fresh
t0=$(now); tar -xpf "$dist" -C "$work/root"; t1=$(now)
tar_s=$(echo "$t1 - $t0" | bc)
fresh
t0=$(now); tar -xpf "$dist" -C "$work/root"; sync; t1=$(now)
tarsync_s=$(echo "$t1 - $t0" | bc)
fresh
t0=$(now); "$bd" install --root "$work/root" --make true "$dist"; t1=$(now)
inst_s=$(echo "$t1 - $t0" | bc)
rm -rf "$work/root"

echo "world: $dist ($size bytes of tar)"
printf 'tar -xpf           %6.2f s\n' "$tar_s"
printf 'tar -xpf; sync     %6.2f s\n' "$tarsync_s"
printf 'binarydist install %6.2f s  (%.2fx tar, %.2fx tar+sync; target <= 1.5x tar)\n' "$inst_s" \
    "$(echo "$inst_s / $tar_s" | bc -l)" "$(echo "$inst_s / $tarsync_s" | bc -l)"
