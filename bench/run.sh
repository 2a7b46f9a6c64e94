#!/bin/sh
# make bench: runs every per-topic benchmark script in this directory
# (bench/patch.sh: patch sizes and speed; bench/pack.sh: pack and gzip against
# tar | gzip -6 and pigz; bench/install.sh: install against tar -xpf).
# A script whose floor fails exits 1: the others still run, and run.sh exits
# 1 at the end, naming them.
set -u
here=$(dirname "$0")
failed=""
for s in "$here"/*.sh; do
	[ "$(basename "$s")" = run.sh ] && continue
	echo "== $(basename "$s")"
	sh "$s" || failed="$failed $(basename "$s")"
done
[ -z "$failed" ] || { echo "bench: failed:$failed" >&2; exit 1; }
