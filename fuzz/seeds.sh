#!/bin/sh
# Seeds for every fuzz target, from dists and patches that binarydist makes of
# a tiny stage (three revisions: edits, a new file, a removed one, a symlink, a
# hard link, a fifo, a critical library), written to fuzz/seeds/TARGET. They
# are not committed: `make fuzz-cmin` minimizes them into fuzz/corpus/TARGET.
# Also writes fuzz/base/base.tar (the patch_apply target's fixed base) when it
# is missing. BINARYDIST: the binary (a test-hooks build also gives journal
# seeds, from installs killed at each step).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
BIN=${BINARYDIST:-$top/target/release/binarydist}
out=$here/seeds
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
rm -rf "$out"
for t in names manifest tar gunzip install patch_header patch_apply index config journal; do mkdir -p "$out/$t"; done

make_stage() { # REV: a small world, a little different at each revision
	s=$w/stage$1
	mkdir -p "$s/bin" "$s/etc" "$s/lib" "$s/libexec" "$s/usr/share/doc" "$s/var/empty"
	printf 'DragonFly rev %s\n' "$1" >"$s/etc/motd"
	{ seq 1 700; echo "rev $1"; seq 700 1400; } >"$s/bin/tool"
	chmod 755 "$s/bin/tool"
	ln -f "$s/bin/tool" "$s/bin/tool2"
	ln -sf tool "$s/bin/link"
	{ echo "libc $1"; seq 1 300; } >"$s/lib/libc.so.8"
	seq 1 50 >"$s/libexec/ld-elf.so.2"
	[ "$1" = 1 ] && echo old >"$s/usr/share/doc/gone"
	[ "$1" = 3 ] && seq 5 90 >"$s/usr/share/doc/new"
	mkfifo "$s/var/empty/fifo"
	find "$s" -exec touch -h -d @1767225600 {} +
}

pack() { # REV DATE
	make_stage "$1"
	"$BIN" pack --stage "$w/stage$1" --series world --arch x86_64 --branch master \
		--rev "v$1" --date "$2" -o "$w/dist" >/dev/null
}
pack 1 20260101T000000Z
pack 2 20260102T000000Z
pack 3 20260103T000000Z
cd "$w/dist"
d1=DragonFly-world-x86_64-master-20260101T000000Z-v1
d2=DragonFly-world-x86_64-master-20260102T000000Z-v2
d3=DragonFly-world-x86_64-master-20260103T000000Z-v3
"$BIN" diff "$d1.tar.gz" "$d2.tar.gz" -o . >/dev/null
"$BIN" diff "$d2.tar.gz" "$d3.tar.gz" -o . >/dev/null
"$BIN" diff "$d1.tar.gz" "$d3.tar.gz" -o . >/dev/null
mkdir z && "$BIN" diff --compress zstd "$d1.tar.gz" "$d3.tar.gz" -o z >/dev/null

for d in $d1 $d2 $d3; do
	"$BIN" cat "$d.tar.gz" >"$w/$d.tar"
	cp "$w/$d.tar" "$out/tar/$d.tar"
	cp "$w/$d.tar" "$out/install/$d.tar"
	cp "$d.tar.gz" "$out/gunzip/"
	tar -xOf "$w/$d.tar" +MANIFEST >"$out/manifest/$d"
	printf '%s' "$d.tar.gz" >"$out/names/$d"
done
[ -f "$here/base/base.tar" ] || { mkdir -p "$here/base" && cp "$w/$d1.tar" "$here/base/base.tar"; }
printf 'kernel.X86_64_GENERIC' >"$out/names/series"
for p in *.bdpatch z/*.bdpatch; do
	f=$(basename "$p")
	printf '%s' "$f" >"$out/names/$f"
	cp "$p" "$out/patch_header/$(echo "$p" | tr / _)"
done
seed_patch="cargo run -q --release --manifest-path $here/Cargo.toml --example seed_patch --"
for p in "$d1--$d2.bdpatch" "$d1--$d3.bdpatch" "z/$d1--$d3.bdpatch"; do
	$seed_patch "$p" "$out/patch_apply/$(echo "$p" | tr / _)"
done

# INDEX, its signature, KEYS: signed by the fuzzing key (fuzz/keys), then by a
# second key that KEYS rotates to.
"$BIN" index . >/dev/null
"$BIN" sign --no-password --key "$here/keys/fuzz.key" INDEX >/dev/null
sep='
--8<--
'
{ cat INDEX; printf '%s' "$sep"; cat INDEX.minisig; } >"$out/index/signed"
"$BIN" keygen --no-password --secret "$w/k2.key" >/dev/null
"$BIN" keys rotate . --key "$here/keys/fuzz.key" --new "$w/k2.pub" --no-password >/dev/null
"$BIN" index . >/dev/null
"$BIN" sign --no-password --key "$w/k2.key" INDEX >/dev/null
{ cat INDEX; printf '%s' "$sep"; cat INDEX.minisig; printf '%s' "$sep"; cat KEYS; } >"$out/index/rotated"

cp "$top/etc/binarydist.conf.sample" "$out/config/sample"

# Journals as a crash leaves them (needs a test-hooks build: BINARYDIST_TEST_KILL_AT).
for point in stage:3 staged journal op:2 op:6 recorded; do
	r=$w/root-$point
	mkdir -p "$r"
	"$BIN" install --root "$r" --make true "$d1.tar.gz" >/dev/null 2>&1 || true
	BINARYDIST_TEST_KILL_AT=$point "$BIN" install --root "$r" --make true "$d3.tar.gz" >/dev/null 2>&1 || true
	j=$(find "$r" -name journal -type f | head -1)
	[ -n "$j" ] && cp "$j" "$out/journal/$(echo "$point" | tr : _)"
done
ls "$out"/* | wc -l | sed 's/^/seeds: /'
