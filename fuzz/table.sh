#!/bin/sh
# Sums fuzz/results.tsv per target into the markdown table of docs/campaign.md:
# runs, seconds, executions and findings so far, and the command of one run
# as long as all of them together (libFuzzer's speed varies with the load, so
# the executions are what a rerun matches only roughly).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
echo '| target | what it feeds | runs | seconds | executions | findings | reproduce |'
echo '|---|---|---:|---:|---:|---:|---|'
for t in names manifest tar gunzip install patch_header patch_apply index config journal; do
	case $t in
	names) what='dist and patch file names, series, stamps' ;;
	manifest) what='the +MANIFEST text' ;;
	tar) what='the tar reader as install and info read a dist' ;;
	gunzip) what='the parallel gzip reader of dists and bases' ;;
	install) what='a whole install of a hostile tar (user namespace)' ;;
	patch_header) what='patch preamble, JSON header, bounds' ;;
	patch_apply) what='patch streams applied to a fixed base' ;;
	index) what='INDEX, INDEX.minisig, KEYS against a pinned key' ;;
	config) what='/etc/binarydist.conf' ;;
	journal) what='the install journal (format 2) after a crash' ;;
	esac
	awk -F'\t' -v t="$t" -v what="$what" '
		$2 == t { runs++; secs += $3; execs += $4; found += $5 }
		END { printf "| %s | %s | %d | %d | %d | %d | `make fuzz FUZZ_TARGETS=%s FUZZ_SECONDS=%d` |\n", t, what, runs, secs, execs, found, t, (runs ? secs : 60) }
	' "$here/results.tsv"
done
