#!/bin/sh
#
# make demo: the whole story of binarydist, on the bundled sample source
# tree (examples/src: a DragonFly-shaped /usr/src that builds in seconds),
# with a mirror served on 127.0.0.1 by python3's http.server.
#
#	sh tools/demo.sh [STEP...]	(default: every step, in order)
#
# Each step is a function below, named for what it does; the state lives in
# DEMO_DIR (default demo/ in this checkout, emptied first when every step
# runs), so steps can also run one invocation at a time, in order: the
# end-to-end test (tests/it/workflow.rs) runs them so, and looks at the
# root between them. The steps:
#
#   release1       build machine: revision 1, `make binaryrelease'
#   install1       target: binarydist's `make install' into a package
#                  root, then `make installbinary' of revision 1 into
#                  demo/root from the mirror, with the installed fragment
#   release2, release3   revisions 2 and 3 (patches appear)
#   update3        target: `make updatebinary' to revision 3 through the
#                  chain of patches, with the fragment the world carries
#   run3           the installed programs, from the root
#   custom         a second target, with the CUSTOM kernel: its own series
#   release4       revision 4 changes only the world: no new kernel dist
#   update4        target: `make updatebinary': only the world changes
#   rollback       target: `binarydist rollback' to revision 3 of the world,
#                  which holds it there; `status' and `check' say so
#   summary        what happened, in figures
#
# BINARYDIST names the binarydist to use (default: target/release/binarydist,
# which make demo builds); BMAKE the make (default bmake).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
STEPS="release1 install1 release2 release3 update3 run3 custom release4 update4 rollback summary"

make=${BMAKE:-bmake}
if ! command -v "$make" >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1 ||
    ! command -v python3 >/dev/null 2>&1 || ! command -v minisign >/dev/null 2>&1; then
	sh "$top/tools/test-deps.sh"
fi
bin=${BINARYDIST:-$top/target/release/binarydist}
[ -x "$bin" ] || { echo "demo: no $bin: build binarydist first (make build)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
unset MAKEFLAGS MAKELEVEL MFLAGS SOURCE_DATE_EPOCH || true
work=${DEMO_DIR:-$top/demo}
[ $# -gt 0 ] || { set -- $STEPS; fresh=yes; }
if [ "${fresh:-}" = yes ]; then
	command -v chflags >/dev/null 2>&1 && chflags -R noschg "$work" 2>/dev/null || true
	rm -rf "$work"
fi
mkdir -p "$work/steps"
work=$(cd "$work" && pwd -P)
dist=$work/dist root=$work/root pkg=$work/target-pkg
log=$work/steps

say() { printf '\n== %s\n' "$*"; }
size() { wc -c < "$1" | tr -d ' '; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", b ? 100 * a / b : 0 }'; }

# The mirror: python3's http.server on a free port of 127.0.0.1, serving
# DISTDIR, for as long as this invocation runs; its request log is kept
# (httpd.log) to count what each target step downloaded.
mirror_start() {
	mkdir -p "$dist"
	: > "$work/httpd.out"
	python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$dist" \
	    > "$work/httpd.out" 2>> "$work/httpd.log" &
	httpd=$!
	trap 'kill $httpd 2>/dev/null || true' EXIT INT TERM
	n=0
	until port=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$work/httpd.out") && [ -n "$port" ]; do
		n=$((n + 1))
		[ $n -lt 100 ] || { echo "demo: the mirror did not start" >&2; exit 1; }
		sleep 0.1
	done
	url=http://127.0.0.1:$port/
	printf 'MIRRORS="%s"\nMAKE="%s"\n' "$url" "$make" > "$work/binarydist.conf"
}

# Bytes the mirror served since line $1 of its log, of the files matching
# $2 (python's log says the file and the status; the size is the file's).
served_since() {
	tail -n +"$(($1 + 1))" "$work/httpd.log" | sed -n 's|.*"GET /\([^ ?]*\) HTTP/[0-9.]*" 200 .*|\1|p' |
	grep -E "$2" | while read -r f; do [ -f "$dist/$f" ] && size "$dist/$f" || echo 0; done |
	awk '{ n += $1 } END { print n + 0 }'
}

# target STEP MAKE-ARGS...: runs make on a target, with the target's own
# binarydist (from binarydist's `make install') first in PATH, and records
# its output and what the mirror served for it.
target() {
	step=$1; shift
	before=$(wc -l < "$work/httpd.log" | tr -d ' ')
	echo "target: make $*"
	if ! PATH="$pkg/usr/local/sbin:$PATH" "$make" "$@" > "$log/$step.log" 2>&1; then
		tail -n 20 "$log/$step.log" >&2
		echo "demo: $step failed; the whole log is $log/$step.log" >&2
		exit 1
	fi
	served_since "$before" '^DragonFly-' > "$log/$step.bytes"
	served_since "$before" '^(INDEX|INDEX.minisig|KEYS)$' > "$log/$step.index-bytes"
	echo "  the plan (binarydist plan):"
	grep -E '^[A-Za-z0-9._]+: .* (by [A-Za-z]+,|is up to date)|^  DragonFly-' "$log/$step.log" | awk '!seen[$0]++' |
	    sed 's/^/    /' || true
	grep '^installed \|^reboot needed' "$log/$step.log" | sed 's/^/  /' || true
	echo "  downloaded $(cat "$log/$step.bytes") bytes of dists and patches (and $(cat "$log/$step.index-bytes") of INDEX and signature, read by plan and by update)"
}

# Build machine: revision N of the sample tree, `make binaryrelease' in its
# /usr/src (tools/sample-dists.sh), signed; each new dist patched from the
# one before only (BINDIST_DIFFS=1), so that a target more than one release
# behind applies a chain. The tree and the stages are deleted afterwards:
# nothing on the target may read them.
release() {
	say "Build machine: release $1: make binaryrelease"
	[ -f "$work/binarydist.key" ] || "$bin" keygen --no-password --secret "$work/binarydist.key" > "$log/keygen.log"
	PATH="$(dirname "$bin"):$PATH" BINDIST_TARGETS=binaryrelease \
	    BINDIST_ARGS="BINDIST_DIFFS=1 BINDIST_SIGNKEY=$work/binarydist.key" \
	    sh "$top/tools/sample-dists.sh" "$work" "$1"
	grep '^>>> .*same content\|^binarydist diff\|^prune ' "$work/build-$1.log" | sed 's/^/  /' || true
	rm -rf "$work/usr/src" "$work/stage"
}

# Target: binarydist itself, installed by its own `make install' into a
# package root (as a port would be), then the first install of the root
# from the mirror with the fragment that install put under share/: the
# target has no /usr/src.
install1() {
	say "Target: make install of binarydist, then make installbinary (revision 1)"
	(cd "$top" && "$make" install DESTDIR="$pkg" PREFIX=/usr/local BINARY="$bin" CARGO=true) > "$log/make-install.log" 2>&1 ||
	    { cat "$log/make-install.log" >&2; exit 1; }
	rm -rf "$root" && mkdir -p "$root"
	target install1 -C "$pkg/usr/local/share/binarydist/binarydists" installbinary DESTDIR="$root" \
	    BINDIST_MIRROR="$url" BINDIST_PUBKEY="$work/binarydist.pub" KERNCONF=GENERIC \
	    BINARYDIST="$pkg/usr/local/sbin/binarydist"
}

# Target: the update, as the periodic job would run it, from the mirrors of
# binarydist.conf, with the fragment the installed world carries.
update() {
	say "Target: make updatebinary ($1)"
	target "$1" -C "$root/usr/share/binarydist/upgrade-src/binarydists" updatebinary DESTDIR="$root" \
	    BINDIST_CONF="$work/binarydist.conf" BINARYDIST="$pkg/usr/local/sbin/binarydist"
	removed=$(grep -E "^$root/[^ ]+$" "$log/$1.log" || true)
	if [ -n "$removed" ]; then
		echo "  make upgrade (from the subset in the dist) removed:"
		echo "$removed" | sed "s|^$root|    |"
	fi
}

run3() {
	say "Target: the installed programs, run from the root"
	for p in bin/hello usr/bin/wc sbin/sysinfo libexec/ld-elf.so.2 boot/kernel/kernel; do
		printf '  %-20s ' "/$p:"
		echo "one two" | LD_LIBRARY_PATH="$root/lib" "$root/$p" | head -n 1
	done | tee "$log/run3.out"
}

# A second target that runs the CUSTOM kernel: it follows its own series.
custom() {
	say "Target 2: make installbinary KERNCONF=CUSTOM"
	rm -rf "$work/root-custom" && mkdir -p "$work/root-custom"
	target custom -C "$pkg/usr/local/share/binarydist/binarydists" installbinary DESTDIR="$work/root-custom" \
	    BINDIST_MIRROR="$url" BINDIST_PUBKEY="$work/binarydist.pub" KERNCONF=CUSTOM \
	    BINARYDIST="$pkg/usr/local/sbin/binarydist"
	echo "  its kernel: $("$work/root-custom/boot/kernel/kernel")"
}

rollback() {
	say "Target: binarydist rollback (the world, one generation back)"
	b=$pkg/usr/local/sbin/binarydist
	if ! "$b" rollback --root "$root" --make "$make" --config "$work/binarydist.conf" > "$log/rollback.log" 2>&1; then
		tail -n 20 "$log/rollback.log" >&2
		echo "demo: rollback failed; the whole log is $log/rollback.log" >&2
		exit 1
	fi
	grep '^rolled back to \|is held' "$log/rollback.log" | sed 's/^/  /'
	echo "  binarydist status:"
	"$b" status --root "$root" --config "$work/binarydist.conf" | sed 's/^/    /'
	if "$b" check --root "$root" > "$log/check.log" 2>&1; then
		echo "  binarydist check: $(grep -c 'entries checked, 0 differ' "$log/check.log") series as installed, nothing differs"
	else
		cat "$log/check.log" >&2; echo "demo: check found differences after the rollback" >&2; exit 1
	fi
}
summary() {
	say "What happened"
	echo "Dists on the mirror (bytes):"
	for d in "$dist"/*.tar.gz; do printf '  %8s  %s\n' "$(size "$d")" "${d##*/}"; done
	echo "Patches (bytes, and against the full dist they stand in for):"
	for p in "$dist"/*.bdpatch; do
		to=${p##*/}; to=${to#*--}; to=${to%.bdpatch}
		printf '  %8s  %6s of %8s  %s\n' "$(size "$p")" "$(pct "$(size "$p")" "$(size "$dist/$to.tar.gz")")" \
		    "$(size "$dist/$to.tar.gz")" "${p##*/}"
	done
	echo "Release 4 changed only the world:"
	grep '^>>> .*same content' "$work/build-4.log" | sed 's/^>>> /  /'
	echo "Downloads of the target against the full dists it installed:"
	for s in install1 update3 update4; do
		full=0
		for n in $(sed -n 's/^installed \([^:]*\):.*/\1/p' "$log/$s.log"); do
			full=$((full + $(size "$dist/$n.tar.gz")))
		done
		printf '  %-8s %8s bytes downloaded, the full dists are %8s (%s)\n' "$s" "$(cat "$log/$s.bytes")" "$full" \
		    "$(pct "$(cat "$log/$s.bytes")" "$full")"
		sed -n 's/^installed \([^ ]*\): \([0-9]*\) written (\([0-9]*\) bytes).*/             \2 entries written (\3 bytes) for \1/p' "$log/$s.log"
	done
	echo "The signature: the target checked every INDEX against the key it pinned at first use:"
	if cmp -s "$root/var/db/binarydist/keys/pinned.pub" "$work/binarydist.pub"; then
		echo "  pinned: the build machine's key ($(sed -n 's/.*key \([0-9A-F]*\).*/\1/p' "$work/binarydist.pub" | head -n 1))"
	else
		echo "  pinned key differs from the build machine's!" >&2; exit 1
	fi
	if command -v minisign >/dev/null 2>&1; then
		echo "  minisign -V agrees: $(minisign -Vm "$dist/INDEX" -p "$work/binarydist.pub" | tail -n 1)"
	fi
	tampered=$work/tampered
	rm -rf "$tampered" && mkdir -p "$tampered"
	cp "$dist/INDEX.minisig" "$tampered/"
	sed 's/^expires 2/expires 3/' "$dist/INDEX" > "$tampered/INDEX"
	if "$bin" plan --root "$root" --mirror "$tampered" --config /dev/null > "$log/tampered.log" 2>&1; then
		echo "demo: a tampered INDEX was accepted!" >&2; exit 1
	fi
	echo "  a mirror with one byte of its INDEX changed is refused: $(tail -n 1 "$log/tampered.log")"
	for sum in MD5:md5sum SHA256:sha256sum; do
		list=$dist/CHECKSUM.${sum%%:*}
		if ! sed -E 's/^[A-Z0-9]+ \((.*)\) = (.*)$/\2  \1/' "$list" | (cd "$dist" && ${sum#*:} -c --quiet -); then
			echo "demo: $list does not verify" >&2; exit 1
		fi
		echo "${list##*/}: $(wc -l < "$list" | tr -d ' ') files, all verified by ${sum#*:} -c (from the BSD form)"
	done
	echo
	echo "demo: everything is in $work (build-N.log, steps/*.log; the target roots: root, root-custom)"
}

need_mirror=
for step in "$@"; do
	case "$step" in install1|update3|custom|update4|summary) need_mirror=yes ;; esac
done
[ -z "$need_mirror" ] || mirror_start
for step in "$@"; do
	case "$step" in
	release[1-4]) release "${step#release}" ;;
	update3|update4) update "$step" ;;
	install1|run3|custom|rollback|summary) "$step" ;;
	*) echo "demo: no step $step (steps: $STEPS)" >&2; exit 2 ;;
	esac
done
