#!/bin/sh
# make test-large: binarydist diff and patch end to end on real worlds made of
# released binaries (../shared/bench/worlds.sh): diffs 1->2 and 2->3, then
#   gunzip -c world-1.tar.gz | binarydist patch P12        -> md5sum == world-2.tar
#   gunzip -c world-1.tar.gz | binarydist patch P12 P23    -> md5sum == world-3.tar
#   binarydist patch P12 P23 --base world-1.tar.gz -o new.tar.gz (gunzipped == world-3.tar)
# The worlds are kept in ${BINARYDIST_WORLDS:-/var/tmp/binarydist-worlds} (outside
# the repository; several hundred MB, downloaded once with apt-get download).
set -eu
cd "$(dirname "$0")/.."
repo=$PWD
worlds=${BINARYDIST_WORLDS:-/var/tmp/binarydist-worlds}
bin=$repo/target/release/binarydist
[ -x "$bin" ] || cargo build --release
bash ../shared/bench/worlds.sh "$worlds" >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/binarydist-large.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# The worlds under dist names, which is what diff reads the patch name from.
name() { echo "DragonFly-world-x86_64-master-2026010${1}T000000Z-w$1"; }
for i in 1 2 3; do ln -s "$worlds/world-$i.tar" "$work/$(name $i).tar"; done
gzip -1 -c "$worlds/world-1.tar" > "$work/$(name 1).tar.gz"

now() { date +%s; }
step() { echo "test-large: $*"; }
mkdir "$work/patches"
for pair in "1 2" "2 3"; do
	set -- $pair
	t0=$(now)
	"$bin" diff "$work/$(name "$1").tar" "$work/$(name "$2").tar" -o "$work/patches"
	step "diff world-$1 -> world-$2: $(( $(now) - t0 )) s"
done
p12=$work/patches/$(name 1)--$(name 2).bdpatch
p23=$work/patches/$(name 2)--$(name 3).bdpatch
"$bin" info "$p12"

md5() { md5sum | cut -c1-32; }
check() { # check WHAT GOT EXPECTED
	if [ "$2" != "$3" ]; then echo "test-large: FAIL: $1: md5 $2, expected $3" >&2; exit 1; fi
	step "$1: OK ($2)"
}
want2=$(md5 < "$worlds/world-2.tar")
want3=$(md5 < "$worlds/world-3.tar")

t0=$(now)
got=$(gunzip -c "$work/$(name 1).tar.gz" | "$bin" patch "$p12" | md5)
check "gunzip -c world-1 | patch 1->2 ($(( $(now) - t0 )) s)" "$got" "$want2"
t0=$(now)
got=$(gunzip -c "$work/$(name 1).tar.gz" | "$bin" patch "$p12" "$p23" | md5)
check "gunzip -c world-1 | patch 1->2 2->3 ($(( $(now) - t0 )) s)" "$got" "$want3"
t0=$(now)
"$bin" patch "$p12" "$p23" --base "$work/$(name 1).tar.gz" -o "$work/new.tar.gz"
got=$(gunzip -c "$work/new.tar.gz" | md5)
check "patch 1->2 2->3 --base world-1.tar.gz -o new.tar.gz ($(( $(now) - t0 )) s)" "$got" "$want3"

# A wrong base must be refused, with a non-zero exit.
if "$bin" patch "$p23" < "$worlds/world-1.tar" > /dev/null 2> "$work/err"; then
	echo "test-large: FAIL: patch 2->3 applied to world-1" >&2; exit 1
fi
step "patch 2->3 on world-1 refused: $(cat "$work/err")"
ls -l "$work/patches"
step "all OK"
