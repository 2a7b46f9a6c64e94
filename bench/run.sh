#!/bin/sh
# make bench: runs every per-topic benchmark script in this directory
# (bench/patch.sh: patch sizes and speed; bench/pack.sh: pack and gzip against
# tar | gzip -6 and pigz; bench/install.sh: install against tar -xpf).
set -eu
here=$(dirname "$0")
for s in "$here"/*.sh; do
	[ "$(basename "$s")" = run.sh ] && continue
	echo "== $(basename "$s")"
	sh "$s"
done
