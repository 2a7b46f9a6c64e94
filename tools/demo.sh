#!/bin/sh
#
# make demo: the build machine's side on the bundled sample source tree.
# Builds revisions 1, 2 and 3 of examples/src (a DragonFly-shaped /usr/src
# that builds in seconds) with
#
#	make binarydist binarykernel KERNCONFS="GENERIC CUSTOM"
#
# through binarydists/Makefile, as an admin would in /usr/src, into one
# DISTDIR; then shows the dists and the patches made, each patch's size
# against the full dist it replaces.
#
# DEMO_DIR=dir keeps everything there (default: a new directory in /tmp).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
make=${BMAKE:-bmake}
command -v "$make" >/dev/null 2>&1 || { echo "demo: $make is not installed (make test-deps installs it)" >&2; exit 1; }
[ -x "$top/target/release/binarydist" ] || { echo "demo: build binarydist first (make build)" >&2; exit 1; }
work=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/binarydist-demo.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd -P)
src=$work/usr/src dist=$work/dist
export PATH="$top/target/release:$PATH" MAKEOBJDIRPREFIX="$work/obj"

nodiff=
if ! binarydist diff --help >/dev/null 2>&1; then
	echo "demo: this binarydist has no diff command yet: dists only (NODIFF=yes)"
	nodiff=NODIFF=yes
fi

# One hour apart, so that the three builds sort as they were made.
epoch=1790000000
for rev in 1 2 3; do
	sh "$top/examples/mkrev.sh" "$src" "$rev"
	rm -rf "$src/binarydists"
	cp -R "$top/binarydists" "$src/binarydists"
	echo "demo: revision $rev: make binarydist binarykernel KERNCONFS=\"GENERIC CUSTOM\" (log: $work/build-$rev.log)"
	# shellcheck disable=SC2086
	if ! (cd "$src" && "$make" binarydist binarykernel KERNCONFS="GENERIC CUSTOM" \
	    DISTDIR="$dist" STAGE="$work/stage" BRANCH=master GITREV="r$rev" \
	    SOURCE_DATE_EPOCH=$((epoch + rev * 3600)) \
	    UPGRADE_LIST="$top/etc/upgrade-subset.conf" \
	    CRITICAL_LIST="$top/etc/critical.conf" $nodiff) > "$work/build-$rev.log" 2>&1; then
		tail -n 20 "$work/build-$rev.log" >&2
		echo "demo: revision $rev failed; the whole log is $work/build-$rev.log" >&2
		exit 1
	fi
done

size() { wc -c < "$1" | tr -d ' '; }
echo
echo "Dists in $dist:"
for d in "$dist"/*.tar.gz; do
	printf '  %10s  %s\n' "$(size "$d")" "${d##*/}"
done
echo
if ls "$dist"/*.bdpatch >/dev/null 2>&1; then
	echo "Patches (size, and against the full dist they stand in for):"
	for p in "$dist"/*.bdpatch; do
		to=${p##*/}; to=${to#*--}; to=${to%.bdpatch}
		full=$(size "$dist/$to.tar.gz")
		ps=$(size "$p")
		printf '  %10s  %5s%% of %10s  %s\n' "$ps" \
		    "$(awk -v a="$ps" -v b="$full" 'BEGIN { printf "%.1f", 100 * a / b }')" "$full" "${p##*/}"
	done
else
	echo "No patches (binarydist diff not available)."
fi
echo
echo "demo: everything is in $work"
