#!/bin/sh
# bench/pack.sh: gzip time and size of `binarydist pack` against
# `tar --sort=name | gzip -6` and `| pigz -6 -p N` of the same stage, on the
# real worlds of ../shared/bench/worlds.sh; the decompression of each output
# by gzip -d, pigz -d and `binarydist cat`; and `binarydist patch` world-1 ->
# world-2 applied from the gzipped dist against the same patch from the plain
# tar. Every tool runs pinned (taskset) to N cores, for N = 2 and N = all the
# machine's cores, RUNS times (default 3), alternating; medians are printed,
# and the floors compare the best runs (load from elsewhere only adds time).
# Floors (docs/format.md), on N >= 2 cores:
#   pack size <= 1.02x gzip -6's; pack >= 2.5x faster than tar|gzip -6 and
#   no slower than tar|pigz -6 -p N; patch from the .tar.gz <= 1.5x from the .tar.
# Exits non-zero if one fails. Not a test: run it on a quiet machine.
#   WORLDS="1 2 3"  which worlds to pack      RUNS=3  runs of each command
#   BINARYDIST_BIN=PATH  the binarydist to measure   BENCH_PRIORITY=0  see bench/priority.sh
set -eu
. "$(dirname "$0")/priority.sh"
cd "$(dirname "$0")/.."
worlds=${BINARYDIST_WORLDS:-/var/tmp/binarydist-worlds}
bd=${BINARYDIST_BIN:-$PWD/target/release/binarydist}
[ -x "$bd" ] || cargo build --release
for t in pigz taskset; do
	command -v $t >/dev/null || { echo "bench/pack.sh: needs $t (make test-deps)" >&2; exit 1; }
done
[ -f "$worlds/world-3.tar" ] || bash ../shared/bench/worlds.sh "$worlds" >/dev/null
work=$(mktemp -d "${TMPDIR:-/var/tmp}/binarydist-bench-pack.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
runs=${RUNS:-3}
all=$(nproc)
cores=2
[ "$all" -gt 2 ] && cores="2 $all"
[ "$all" -lt 2 ] && cores=$all
failed=0

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# timed KEY N CMD: runs the shell command CMD pinned to N cores, records its
# wall and CPU (user + system) seconds under KEY
timed() {
	/usr/bin/time -f "%e %U %S" -o "$work/t" taskset -c "0-$(($2 - 1))" sh -c "$3" >/dev/null 2>"$work/err" ||
		{ echo "bench/pack.sh: failed: $3" >&2; cat "$work/err" >&2; exit 1; }
	tail -1 "$work/t" | awk -v k="$1" '{ print k, $1, $2 + $3 }' >> "$work/times"
}
med() { awk -v k="$1" '$1 == k { print $2 }' "$work/times" | median; }
cpu() { awk -v k="$1" '$1 == k { print $3 }' "$work/times" | median; }
# The floors compare best runs: other work on the machine only ever adds time.
best() { awk -v k="$1" '$1 == k { print $2 }' "$work/times" | sort -n | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
# floor WHAT VALUE OP LIMIT
floor() {
	if awk -v v="$2" -v l="$4" "BEGIN { exit !(v $3 l) }"; then
		echo "  floor ok:     $1 = $2 ($3 $4)"
	else
		echo "  FLOOR FAILED: $1 = $2 (must be $3 $4)"
		failed=1
	fi
}

echo "bench/pack.sh: $(nproc) cores, $bench_priority, $(uptime | sed 's/.*load average/load average/')"
for w in ${WORLDS:-1 2 3}; do
	stage=$worlds/world-$w
	tar --sort=name -cf - -C "$stage" . > /dev/null # warm the page cache
	for n in $cores; do
		: > "$work/times"
		rm -rf "$work/dist" && mkdir "$work/dist"
		i=0
		while [ $i -lt "$runs" ]; do
			timed pack "$n" "'$bd' pack --stage '$stage' --series world --branch bench --rev w$w \
				--date 2026010${w}T000000Z --threads $n -o '$work/dist'"
			timed gzip "$n" "tar --sort=name -cf - -C '$stage' . | gzip -6 > '$work/gzip.tar.gz'"
			timed pigz "$n" "tar --sort=name -cf - -C '$stage' . | pigz -6 -p $n > '$work/pigz.tar.gz'"
			for f in dist gzip pigz; do
				file=$work/$f.tar.gz
				[ $f = dist ] && file=$(ls "$work"/dist/*.tar.gz)
				timed "$f-gzip-d" "$n" "gzip -dc '$file' > /dev/null"
				timed "$f-pigz-d" "$n" "pigz -dc -p $n '$file' > /dev/null"
				timed "$f-cat" "$n" "'$bd' cat '$file' > /dev/null"
			done
			i=$((i + 1))
		done
		dist=$(ls "$work"/dist/*.tar.gz)
		md5=$("$bd" cat "$dist" | md5sum | cut -c1-32)
		grep -q "$md5" "$work"/dist/*.tar.md5 || { echo "bench/pack.sh: cat does not give the dist's tar" >&2; exit 1; }
		[ "$(gzip -dc "$work/gzip.tar.gz" | md5sum)" = "$("$bd" cat "$work/pigz.tar.gz" | md5sum)" ] ||
			{ echo "bench/pack.sh: gzip and pigz outputs differ" >&2; exit 1; }
		ds=$(wc -c < "$dist"); gs=$(wc -c < "$work/gzip.tar.gz"); ps=$(wc -c < "$work/pigz.tar.gz")
		echo "world-$w on $n cores ($(du -sm "$stage" | cut -f1) MB stage; medians of $runs runs, seconds; best pack $(best pack), gzip $(best gzip), pigz $(best pigz)):"
		printf '  %-22s %11s %7s %7s %7s %7s %7s\n' "" bytes pack "(cpu)" "gzip -d" "pigz -d" "bd cat"
		for f in dist gzip pigz; do
			case $f in dist) s=$ds; k=pack; l="binarydist pack" ;; gzip) s=$gs; k=gzip; l="tar | gzip -6" ;;
				pigz) s=$ps; k=pigz; l="tar | pigz -6 -p $n" ;; esac
			printf '  %-22s %11d %7.2f %7s %7.2f %7.2f %7.2f\n' "$l" "$s" "$(med $k)" "($(cpu $k))" \
				"$(med $f-gzip-d)" "$(med $f-pigz-d)" "$(med $f-cat)"
		done
		if [ "$n" -ge 2 ]; then
			floor "pack size / gzip -6 size" "$(ratio "$ds" "$gs")" "<=" 1.02
			floor "tar|gzip -6 time / pack time" "$(ratio "$(best gzip)" "$(best pack)")" ">=" 2.5
			floor "pack time / tar|pigz time" "$(ratio "$(best pack)" "$(best pigz)")" "<=" 1.0
		fi
		[ "$w" = 1 ] && cp "$dist" "$work/w1.tar.gz" && cp "$work"/dist/*.tar.md5 "$work/w1.md5"
		[ "$w" = 2 ] && cp "$dist" "$work/w2.tar.gz"
	done
done

# Applying world-1 -> world-2: the old tar from the gzipped dist, or plain.
[ -f "$work/w1.tar.gz" ] && [ -f "$work/w2.tar.gz" ] || exit $failed
old=$work/DragonFly-world-x86_64-bench-20260101T000000Z-w1
new=$work/DragonFly-world-x86_64-bench-20260102T000000Z-w2
mv "$work/w1.tar.gz" "$old.tar.gz" && mv "$work/w2.tar.gz" "$new.tar.gz"
"$bd" cat "$old.tar.gz" > "$old.tar"
mkdir "$work/p" && "$bd" diff "$old.tar.gz" "$new.tar.gz" -o "$work/p" > /dev/null
patch=$(ls "$work"/p/*.bdpatch)
# The base a target keeps is written by the installer itself (at gzip level 1,
# tario::gz::BASE_LEVEL), not the dist as published: install world-1 into a
# scratch root and take its base.
"$bd" install --root "$work/root" "$old.tar.gz" > /dev/null
base=$work/root/var/db/binarydist/world/base.tar.gz
[ -f "$base" ] || { echo "bench/pack.sh: the install kept no $base" >&2; exit 1; }
for n in $cores; do
	: > "$work/times"
	i=0
	while [ $i -lt "$runs" ]; do
		timed tar "$n" "'$bd' patch '$patch' --base '$old.tar' > /dev/null"
		timed gz "$n" "'$bd' patch '$patch' --base '$old.tar.gz' > /dev/null"
		timed base "$n" "'$bd' patch '$patch' --base '$base' > /dev/null"
		timed pipe "$n" "gzip -dc '$old.tar.gz' | '$bd' patch '$patch' > /dev/null"
		i=$((i + 1))
	done
	echo "binarydist patch world-1 -> world-2 on $n cores (medians of $runs runs, seconds; best $(best tar) from .tar, $(best base) from the kept base, $(best gz) from the dist):"
	for k in tar base gz pipe; do
		case $k in tar) l="--base world-1.tar" ;; base) l="--base base.tar.gz (kept, level 1)" ;;
			gz) l="--base world-1.tar.gz (dist, level 6)" ;; pipe) l="gzip -dc world-1.tar.gz | patch" ;; esac
		printf '  %-34s %7.2f s (cpu %s s)\n' "$l" "$(med $k)" "$(cpu $k)"
	done
	[ "$n" -ge 2 ] && floor "patch from the kept base / from .tar" "$(ratio "$(best base)" "$(best tar)")" "<=" 1.5
	[ "$n" -ge 2 ] && floor "patch from the dist / from .tar" "$(ratio "$(best gz)" "$(best tar)")" "<=" 1.5
done
echo "after: $(uptime | sed 's/.*load average/load average/')"
exit $failed
