#!/bin/sh
#
# make demo: the whole story on the bundled sample source tree.
# Builds revisions 1, 2 and 3 of examples/src (a DragonFly-shaped /usr/src
# that builds in seconds) with
#
#	make binarydist binarykernel KERNCONFS="GENERIC CUSTOM"
#
# through binarydists/Makefile, as an admin would in /usr/src, into one
# DISTDIR (tools/sample-dists.sh); then shows the dists and the patches
# made, each patch's size against the full dist it stands in for; then, as
# a target machine, installs revision 1 into demo/root and updates it to
# revision 3 by patches, make upgrade included.
#
# DEMO_DIR=dir keeps everything there (default: demo/ in this checkout,
# emptied first).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v "${BMAKE:-bmake}" >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
	sh "$top/tools/test-deps.sh"
fi
[ -x "$top/target/release/binarydist" ] || { echo "demo: build binarydist first (make build)" >&2; exit 1; }
PATH="$top/target/release:$PATH"
work=${DEMO_DIR:-$top/demo}
if [ -z "${DEMO_DIR:-}" ]; then
	command -v chflags >/dev/null 2>&1 && chflags -R noschg "$work" 2>/dev/null || true
	rm -rf "$work"
fi
sh "$top/tools/sample-dists.sh" "$work" 1 2 3
dist=$work/dist

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
	echo "No patches: this binarydist has no diff command yet."
fi

# The target machine's side: a first install of revision 1 into an empty
# root, then the update to revision 3 by the chain of patches r1->r2, r2->r3,
# with make upgrade run from the /usr/src subset inside the dist (the sample
# tree is not used: a target has none).
root=$work/root
rm -rf "$root" && mkdir -p "$root"
first=$(ls "$dist"/DragonFly-world-*-r1.tar.gz)
p12=$(ls "$dist"/DragonFly-world-*-r1--DragonFly-world-*-r2.bdpatch)
p23=$(ls "$dist"/DragonFly-world-*-r2--DragonFly-world-*-r3.bdpatch)
echo
echo "Target: binarydist install --root $root ${first##*/}"
binarydist install --root "$root" --make "${BMAKE:-bmake}" "$first" 2>"$work/install-1.log"
echo "Target: binarydist install --root $root --patch (r1->r2) (r2->r3)"
binarydist install --root "$root" --make "${BMAKE:-bmake}" --patch "$p12" "$p23" 2>"$work/install-2.log"
echo "Installed: $(sed -n 's/^name //p' "$root/var/db/binarydist/world/installed")"
LD_LIBRARY_PATH=$root/lib "$root/bin/hello" || true
echo
echo "demo: everything is in $work (build logs: build-N.log, install logs: install-N.log; the sample tree: usr/src; the target: root)"
