#!/bin/sh
#
# sample-dists.sh WORKDIR [REV...]: builds revisions (default 1 2 3) of the
# sample source tree (examples/src, see examples/mkrev.sh) through
# binarydists/Makefile, as a build machine would:
#
#	cd WORKDIR/usr/src && bmake binarydist binarykernel KERNCONFS="GENERIC CUSTOM"
#
# Dists (and patches, when binarydist has a diff command) go to
# WORKDIR/dist; objects to WORKDIR/obj, stages to WORKDIR/stage, the build
# log of revision N to WORKDIR/build-N.log. Revision N is stamped
# SOURCE_DATE_EPOCH=1790000000+N*3600, BRANCH=master, GITREV=rN, so the
# names are the same on every run. The binarydist used is the first in
# PATH, else target/release/binarydist of this checkout; BMAKE names the
# make (default bmake); BINDIST_TARGETS the targets (default: binarydist
# binarykernel; make demo runs binaryrelease); extra make arguments can be
# given in BINDIST_ARGS.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: sample-dists.sh WORKDIR [REV...]" >&2; exit 2; }
work=$1; shift
[ $# -gt 0 ] || set -- 1 2 3
make=${BMAKE:-bmake}
command -v "$make" >/dev/null 2>&1 || { echo "sample-dists: $make is not installed (make test-deps installs it)" >&2; exit 1; }
command -v binarydist >/dev/null 2>&1 || PATH="$top/target/release:$PATH"
command -v binarydist >/dev/null 2>&1 || { echo "sample-dists: no binarydist in PATH and no $top/target/release/binarydist: run make build" >&2; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd -P)
src=$work/usr/src
export PATH MAKEOBJDIRPREFIX="$work/obj"
unset MAKEFLAGS SOURCE_DATE_EPOCH || true

nodiff=
if ! binarydist diff --help >/dev/null 2>&1; then
	echo "sample-dists: this binarydist has no diff command yet: dists only (NODIFF=yes)" >&2
	nodiff=NODIFF=yes
fi

for rev in "$@"; do
	sh "$top/examples/mkrev.sh" "$src" "$rev"
	rm -rf "$src/binarydists"
	cp -R "$top/binarydists" "$src/binarydists"
	targets=${BINDIST_TARGETS:-binarydist binarykernel}
	echo "sample-dists: revision $rev: make $targets KERNCONFS=\"GENERIC CUSTOM\" (log: $work/build-$rev.log)"
	# shellcheck disable=SC2086
	if ! (cd "$src" && "$make" $targets KERNCONFS="GENERIC CUSTOM" \
	    DISTDIR="$work/dist" STAGE="$work/stage" BRANCH=master GITREV="r$rev" \
	    SOURCE_DATE_EPOCH=$((1790000000 + rev * 3600)) \
	    UPGRADE_LIST="$top/etc/upgrade-subset.conf" \
	    CRITICAL_LIST="$top/etc/critical.conf" $nodiff ${BINDIST_ARGS:-}) \
	    > "$work/build-$rev.log" 2>&1; then
		tail -n 20 "$work/build-$rev.log" >&2
		echo "sample-dists: revision $rev failed; the whole log is $work/build-$rev.log" >&2
		exit 1
	fi
done
