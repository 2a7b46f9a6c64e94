#!/bin/sh
#
# subset.sh: the part of /usr/src that `make upgrade' needs, as a world dist
# ships it (binarydists/Makefile runs this).
#
#   subset.sh assemble SRCDIR LIST DEST "SRC:DST ..."
#	copies into DEST every path of LIST (relative to SRCDIR; a directory
#	whole; glob patterns allowed), then the SRC:DST copies (with
#	BINARY_UPGRADE, etc/Makefile reads mail.rc and locate.rc from etc/).
#   subset.sh check SRCDIR LIST WORKDIR "SRC:DST ..." MAKE
#	assembles the subset in WORKDIR/src, runs what `make upgrade' runs
#	with -n (etc: upgrade_etc BINARY_UPGRADE=yes; share/man: makedb)
#	against a scratch DESTDIR, and reports, one line each, every file or
#	directory of the subset those commands name that it lacks. Make runs
#	with -n do not run sub-makes, so this runs each sub-make it sees with
#	-n too (a few levels deep).
#
# Exit status 1 when something is missing.

set -u

say() { echo "binarydist check: $*" >&2; }

assemble() {
	src=$1 list=$2 dest=$3 copies=$4 bad=0
	if [ -d "$dest" ]; then
		chflags -R noschg "$dest" 2>/dev/null
		rm -rf "$dest"
	fi
	mkdir -p "$dest" || return 1
	paths=$(sed -e 's/#.*//' -e 's/^[ 	]*//' -e 's/[ 	]*$//' -e '/^$/d' "$list") || return 1
	found=""
	for p in $paths; do
		case "$p" in
		*[*?[]*)
			for m in $(cd "$src" && eval "ls -d $p" 2>/dev/null); do
				found="$found $m"
			done ;;
		*)
			if [ -e "$src/$p" ] || [ -L "$src/$p" ]; then
				found="$found $p"
			else
				say "upgrade subset: $src/$p is missing (listed in $list): the source tree is incomplete, or the list names a file this tree does not have"
				bad=1
			fi ;;
		esac
	done
	if [ -n "$found" ]; then
		# shellcheck disable=SC2086
		(cd "$src" && tar cf - $found) | (cd "$dest" && tar xpf -) || return 1
	fi
	for c in $copies; do
		from=${c%%:*} to=${c#*:}
		if [ -f "$src/$from" ]; then
			mkdir -p "$dest/$(dirname "$to")" && cp -p "$src/$from" "$dest/$to" || return 1
		else
			say "upgrade subset: $src/$from is missing (UPGRADE_COPIES copies it to $to)"
			bad=1
		fi
	done
	return $bad
}

# Reads `make -n' output on stdin; prints "NAMED<TAB>path" for every file or
# directory of the subset that the commands name (absolute paths under
# SUBSET, and words relative to the directory a `cd' into the subset moved
# to), "WORD<TAB>path" for plain words that may be files, and
# "SUBMAKE<TAB>dir<TAB>args" for every make the commands would run (echo's
# words are messages, not files).
scan() {
	awk -v subset="$1" -v start="$2" -v make="$3" '
	function norm(p,    n, i, parts, out, k, o) {
		n = split(p, parts, "/"); k = 0
		for (i = 1; i <= n; i++) {
			if (parts[i] == "" || parts[i] == ".") continue
			if (parts[i] == "..") { if (k > 0) k--; continue }
			out[++k] = parts[i]
		}
		o = ""
		for (i = 1; i <= k; i++) o = o "/" out[i]
		return o == "" ? "/" : o
	}
	function inside(p) { return p == subset || index(p, subset "/") == 1 }
	# 2: a word that names a file (has a dot or a slash); 1: a plain word,
	# a file only if the source tree has it there; 0: not a file name.
	function filelike(w) {
		if (w ~ /^-/ || w ~ /[$=*{}<>`]/ || w !~ /^[A-Za-z0-9_.\/+@%,-]+$/) return 0
		if (w ~ /^[0-9.]+$/ || w ~ /\.$/) return 0
		return w ~ /[.\/]/ ? 2 : 1
	}
	# A command line continued with a backslash is one line.
	/\\$/ { buf = buf substr($0, 1, length($0) - 1) " "; next }
	{
		line = buf $0; buf = ""
		gsub(/;|&&|\|\||\||\(|\)/, " ; ", line)
		n = split(line, w, /[ \t]+/)
		cwd = start; incmd = 0
		for (i = 1; i <= n; i++) {
			t = w[i]; gsub(/^["\047]|["\047]$/, "", t)
			if (t == "") continue
			if (t == ";") { incmd = 0; quiet = 0; continue }
			if (quiet) continue
			if (t == "cd" && i < n) {
				d = w[++i]; gsub(/^["\047]|["\047]$/, "", d)
				cwd = (d ~ /^\//) ? norm(d) : norm(cwd "/" d)
				if (inside(cwd)) printf "NAMED\t%s\n", cwd
				continue
			}
			if (!incmd && (t == make || t ~ ("/" make "$"))) {
				args = ""
				for (j = i + 1; j <= n && w[j] != ";"; j++) args = args " " w[j]
				if (inside(cwd)) printf "SUBMAKE\t%s\t%s\n", cwd, args
				i = j - 1; continue
			}
			if (!incmd && (t == "echo" || t == "printf")) { quiet = 1; continue }
			incmd = 1
			if (!(kind = filelike(t))) continue
			p = (t ~ /^\//) ? norm(t) : norm(cwd "/" t)
			if (inside(p)) printf "%s\t%s\n", (kind == 2 ? "NAMED" : "WORD"), p
		}
	}'
}

check() {
	src=$1 list=$2 work=$3 copies=$4 make=$5
	subset=$work/src root=$work/root
	assemble "$src" "$list" "$subset" "$copies" || bad=1
	bad=${bad:-0}
	[ -d "$subset" ] || return 1
	subset=$(cd "$subset" && pwd -P)
	mkdir -p "$root/etc/upgrade"
	root=$(cd "$root" && pwd -P)
	if [ -f "$subset/Makefile_upgrade.inc" ]; then
		cp "$subset/Makefile_upgrade.inc" "$root/etc/upgrade/"
	fi
	makename=${make##*/}
	todo=$work/todo seen=$work/seen out=$work/out
	: > "$seen"
	# What the top-level `upgrade' target runs, with -n.
	printf 'SUBMAKE\t%s\t -m %s upgrade_etc\n' "$subset/etc" "$subset/share/mk" > "$todo"
	if [ ! -d "$subset/share/man" ]; then
		say "upgrade subset lacks share/man (make upgrade runs make makedb there): add it to the upgrade-subset list $list"
		bad=1
	else
		printf 'SUBMAKE\t%s\t makedb\n' "$subset/share/man" >> "$todo"
	fi
	depth=0
	while [ -s "$todo" ] && [ $depth -lt 4 ]; do
		depth=$((depth + 1))
		mv "$todo" "$todo.now"; : > "$todo"
		while IFS='	' read -r tag dir args; do
			key="$dir $args"
			grep -qxF "$key" "$seen" && continue
			echo "$key" >> "$seen"
			if [ ! -d "$dir" ]; then
				say "upgrade subset lacks ${dir#"$subset"/} (make upgrade runs make there): add it to the upgrade-subset list $list"
				bad=1; continue
			fi
			# shellcheck disable=SC2086
			if ! (cd "$dir" && eval "$make -n $args BINARY_UPGRADE=yes DESTDIR=$root") > "$out" 2>&1; then
				err=$(grep -v '^\*\*\*\|^Stop\.\|stopped in' "$out" | tail -n 1)
				say "upgrade subset: make -n$args fails in ${dir#"$subset"/}: $err"
				bad=1; continue
			fi
			scan "$subset" "$dir" "$makename" < "$out" | while IFS= read -r p; do
				case "$p" in
				SUBMAKE*) echo "$p -m $subset/share/mk" >> "$todo" ;;
				NAMED*)	p=${p#NAMED	}
					[ -e "$p" ] || [ -L "$p" ] || echo "${p#"$subset"/}" ;;
				WORD*)	p=${p#WORD	}; rel=${p#"$subset"/}
					[ -e "$p" ] || [ -L "$p" ] || [ ! -e "$src/$rel" ] || echo "$rel" ;;
				esac
			done >> "$work/missing"
		done < "$todo.now"
	done
	if [ -s "$work/missing" ]; then
		for m in $(sort -u "$work/missing"); do
			say "upgrade subset lacks $m (make upgrade BINARY_UPGRADE=yes names it): add it to the upgrade-subset list $list or to UPGRADE_COPIES"
		done
		bad=1
	fi
	rm -f "$work/missing" "$todo" "$todo.now" "$seen" "$out"
	return $bad
}

case "${1:-}" in
assemble) shift; assemble "$@" ;;
check) shift; bad=0; check "$@" ;;
*) echo "usage: subset.sh assemble SRCDIR LIST DEST COPIES | check SRCDIR LIST WORKDIR COPIES MAKE" >&2; exit 2 ;;
esac
