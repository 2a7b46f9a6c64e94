#!/bin/sh
# make bench: runs every per-topic benchmark script in this directory
# (bench/patch.sh: patch sizes and speed; others add their own).
set -eu
here=$(dirname "$0")
for s in "$here"/*.sh; do
	[ "$(basename "$s")" = run.sh ] && continue
	echo "== $(basename "$s")"
	sh "$s"
done
