#!/bin/sh
#
# subset.sh: the part of /usr/src that `make upgrade' needs, as a world dist
# ships it (binarydists/Makefile runs this).
#
#   subset.sh assemble SRCDIR LIST DEST
#	copies into DEST every path of LIST (relative to SRCDIR; a directory
#	whole; glob patterns allowed; a leading `?' marks an entry that some
#	trees do not have, which is then a note, not a failure).
#   subset.sh check SRCDIR LIST WORKDIR MAKE
#	assembles the subset in WORKDIR/src, runs what `make upgrade' runs
#	with -n (etc: upgrade_etc; share/man: makedb) against a scratch
#	DESTDIR, and reports, one line each, every file or directory of the
#	source tree those commands read that the subset lacks. Each command
#	runs twice: in the source tree, whose output names files as the real
#	tree resolves them (.PATH included), and in the subset, which must not
#	fail. Make runs with -n do not run sub-makes, so this runs each
#	sub-make it sees with -n too (a few levels deep).
#
# Text read from `make -n' output is parsed, never evaluated: a sub-make's
# arguments are passed on as words, with globbing off.
#
# Exit status 1 when something is missing.

set -u

say() { echo "binarydist check: $*" >&2; }
note() { echo "binarydist check: note: $*"; }

# The entries of LIST, one a line, comments and blanks dropped.
entries() {
	sed -e 's/#.*//' -e 's/^[ 	]*//' -e 's/[ 	]*$//' -e '/^$/d' "$1"
}

assemble() {
	src=$1 list=$2 dest=$3 bad=0
	if [ -d "$dest" ]; then
		chflags -R noschg "$dest" 2>/dev/null
		rm -rf "$dest"
	fi
	mkdir -p "$dest" || return 1
	paths=$(entries "$list") || return 1
	found="" missing=""
	set -f
	for p in $paths; do
		optional=
		case "$p" in \?*) optional=yes p=${p#\?} ;; esac
		case "$p" in
		/*|..|../*|*/../*|*/..) say "upgrade subset: entry $p of $list is not a path inside the source tree"; bad=1; continue ;;
		esac
		matches=$(cd "$src" && set +f && for m in $p; do
			if [ -e "$m" ] || [ -L "$m" ]; then echo "$m"; fi
		done)
		if [ -n "$matches" ]; then
			found="$found $matches"
		elif [ -n "$optional" ]; then
			note "optional upgrade-subset entry $p is not in $src: left out (only some DragonFly trees have it)"
		else
			say "upgrade subset: $src/$p is missing (listed in $list): the source tree is incomplete, or the list names a file this tree does not have (mark it ?$p if only some trees have it)"
			missing="$missing $p"
			bad=1
		fi
	done
	set +f
	if [ -n "$found" ]; then
		# shellcheck disable=SC2086
		(cd "$src" && set -f && tar cf - $found) | (cd "$dest" && tar xpf -) || return 1
	fi
	MISSING=$missing
	return $bad
}

# Reads `make -n' output on stdin, run in directory START of TREE; prints
#   REQ<TAB>rel	a file or directory a command needs (an install or cp
#		source, a script, a `<' input, a `cd'),
#   WORD<TAB>rel	any other word that is a path inside TREE,
#   SUBMAKE<TAB>rel<TAB>arg<TAB>arg...	a make the commands would run
#		(SUBMAKE? when rel was named through a shell variable: the
#		make runs only if the tree has that directory),
# with rel relative to TREE. Not files: echo/printf text, test/[ probes,
# the values of a `for' loop, `ln -s' targets, words holding a shell
# variable or a glob, output redirections. Shell variables assigned on the
# line (edir=... in bsd.subdir.mk) are substituted into a `cd'.
scan() {
	awk -v tree="$1" -v start="$2" -v make="$3" '
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
	function rel(p) {
		if (p == tree) return "."
		return index(p, tree "/") == 1 ? substr(p, length(tree) + 2) : ""
	}
	function plain(w) { return w != "" && w !~ /[$*?[`{}=<>]/ && w !~ /^-/ }
	# Splits a command line into words (quotes removed, escapes applied)
	# and operators: ";" for any separator, "<" and ">" for redirections.
	function tokenize(line, tok,    i, c, n, w, inw, q, nx, d) {
		n = 0; w = ""; inw = 0
		for (i = 1; i <= length(line); i++) {
			c = substr(line, i, 1)
			if (c == "\\" && i < length(line)) { w = w substr(line, ++i, 1); inw = 1; continue }
			if (c == "\047") {
				q = index(substr(line, i + 1), "\047")
				if (q == 0) q = length(line) - i + 1
				w = w substr(line, i + 1, q - 1); i += q; inw = 1; continue
			}
			if (c == "\"") {
				for (i++; i <= length(line) && substr(line, i, 1) != "\""; i++) {
					c = substr(line, i, 1)
					if (c == "\\" && i < length(line) && substr(line, i + 1, 1) ~ /["\\$`]/) c = substr(line, ++i, 1)
					w = w c
				}
				inw = 1; continue
			}
			# A command substitution is one word, kept as text.
			if (c == "`") {
				q = index(substr(line, i + 1), "`")
				if (q == 0) q = length(line) - i + 1
				w = w substr(line, i, q + 1); i += q; inw = 1; continue
			}
			if (c == "$" && substr(line, i + 1, 1) == "(") {
				for (d = 0; i <= length(line); i++) {
					c = substr(line, i, 1); w = w c
					if (c == "(") d++
					else if (c == ")" && --d == 0) break
				}
				inw = 1; continue
			}
			if (c ~ /[ \t;&|()<>]/) {
				if (c ~ /[<>]/ && inw && w ~ /^[0-9]+$/) { w = ""; inw = 0 }
				if (inw) { tok[++n] = w; w = ""; inw = 0 }
				if (c ~ /[;&|()]/) { if (n == 0 || tok[n] != ";") tok[++n] = ";" }
				else if (c ~ /[<>]/) {
					tok[++n] = c
					while (substr(line, i + 1, 1) ~ /[<>&]/) i++
					nx = substr(line, i + 1)
					if (c == ">" && nx ~ /^[0-9-]/) { sub(/^[0-9-]+/, "", nx); i = length(line) - length(nx); n-- }
				}
				continue
			}
			w = w c; inw = 1
		}
		if (inw) tok[++n] = w
		tok[++n] = ";"
		return n
	}
	function emit(kind, w,    p, r) {
		if (!plain(w)) return
		if (w !~ /^\//) { if (cwd == "") return; w = cwd "/" w }
		r = rel(norm(w))
		if (r != "") printf "%s\t%s\n", kind, r
	}
	function subst(w,    name, m) {
		while (match(w, /\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/)) {
			name = substr(w, RSTART, RLENGTH); gsub(/[${}]/, "", name)
			if (!(name in vars)) return w
			w = substr(w, 1, RSTART - 1) vars[name] substr(w, RSTART + RLENGTH)
		}
		return w
	}
	# One simple command: words a[1..n].
	function command(a, n,    i, cmd, ops, nop, j, skipnext, s, d, line) {
		i = 1
		while (i <= n && a[i] ~ /^[A-Za-z_][A-Za-z0-9_]*=/) {
			s = index(a[i], "="); vars[substr(a[i], 1, s - 1)] = subst(substr(a[i], s + 1)); i++
		}
		while (i <= n && a[i] ~ /^(if|then|else|elif|fi|do|done|while|until|!|\{|\}|time|esac|in)$/) i++
		if (i > n) return
		cmd = a[i]; sub(/.*\//, "", cmd)
		if (cmd ~ /^(for|case|echo|printf|test|\[|true|false|exit|:|set|export|unset|read|return|break|continue)$/) return
		if (cmd == "cd") {
			d = a[i + 1]
			if (d == "" || d == "-") { cwd = ""; return }
			if (d ~ /\$/) {
				d = subst(d)
				if (d ~ /\$/) { cwd = ""; return }
				# A directory named through a variable may be one branch of an
				# if (bsd.subdir.mk): a file only where the tree has it, and
				# a make there runs only if it is there (SUBMAKE?).
				emit("WORD", d)
				cwd = (d ~ /^\//) ? norm(d) : (cwd == "" ? "" : norm(cwd "/" d)); maybe = 1
				return
			}
			emit("REQ", d)
			cwd = (d ~ /^\//) ? norm(d) : (cwd == "" ? "" : norm(cwd "/" d)); maybe = 0
			return
		}
		if (cmd == make) {
			if (cwd == "" || rel(cwd) == "") return
			line = (maybe ? "SUBMAKE?\t" : "SUBMAKE\t") rel(cwd)
			for (j = i + 1; j <= n; j++) line = line "\t" a[j]
			print line
			return
		}
		nop = 0
		for (j = i + 1; j <= n; j++) {
			if (skipnext) { skipnext = 0; continue }
			if (a[j] ~ /^-/ && nop == 0) {
				if (cmd == "install" && a[j] ~ /^-[BDfghlMmNoT]$/) skipnext = 1
				if (cmd == "awk" && a[j] == "-f") { emit("REQ", a[j + 1]); skipnext = 1 }
				if (cmd == "awk" && a[j] ~ /^-[vF]$/) skipnext = 1
				if (cmd == "ln" && a[j] ~ /s/) return
				if ((cmd == "sh" || cmd == "install" && a[j] == "-d") && a[j] ~ /^-[cd]$/) return
				continue
			}
			ops[++nop] = a[j]
		}
		if (cmd == "install" || cmd == "cp" || cmd == "mv" || cmd == "ln") {
			for (j = 1; j < nop; j++) emit("REQ", ops[j])
			return
		}
		if (cmd == "sh" || cmd == "." || cmd == "source") {
			if (nop > 0) emit("REQ", ops[1])
			for (j = 2; j <= nop; j++) emit("WORD", ops[j])
			return
		}
		for (j = 1; j <= nop; j++) emit("WORD", ops[j])
	}
	# One command line: its simple commands in turn, then the commands
	# inside its command substitutions ($(...) and `...`), which run too.
	function scanline(line, depth,    tok, n, k, t, words, m, redir, inner, subs, ns) {
		n = tokenize(line, tok)
		cwd = start; maybe = 0; m = 0; redir = ""; ns = 0
		for (k = 1; k <= n; k++) {
			t = tok[k]
			if (t == "<" || t == ">") { redir = t; continue }
			if (redir != "") { if (redir == "<") emit("REQ", t); redir = ""; continue }
			if (t == ";") { command(words, m); delete words; m = 0; continue }
			words[++m] = t
			while (depth < 3 && match(t, /\$\(.*\)|`[^`]*`/)) {
				inner = substr(t, RSTART, RLENGTH); t = substr(t, RSTART + RLENGTH)
				sub(/^(\$\(|`)/, "", inner); sub(/(\)|`)$/, "", inner)
				subs[++ns] = inner
			}
		}
		for (k = 1; k <= ns; k++) scanline(subs[k], depth + 1)
	}
	# A command line continued with a backslash is one line.
	/\\$/ { buf = buf substr($0, 1, length($0) - 1) " "; next }
	{
		line = buf $0; buf = ""
		delete vars
		scanline(line, 0)
	}'
}

# Runs `make -n' in DIR of a tree with the arguments $3..., output to OUT.
make_n() {
	_in=$1 _out=$2; shift 2
	(cd "$_in" && "$make" -n "$@" DESTDIR="$root") > "$_out" 2>&1
}

check() {
	src=$1 list=$2 work=$3 make=$4
	subset=$work/src root=$work/root bad=0
	assemble "$src" "$list" "$subset" || bad=1
	listed_missing=$MISSING
	[ -d "$subset" ] || return 1
	subset=$(cd "$subset" && pwd -P)
	src=$(cd "$src" && pwd -P)
	mkdir -p "$root/etc/upgrade"
	root=$(cd "$root" && pwd -P)
	if [ -f "$src/Makefile_upgrade.inc" ]; then
		cp "$src/Makefile_upgrade.inc" "$root/etc/upgrade/"
	fi
	makename=${make##*/}
	todo=$work/todo seen=$work/seen out=$work/out missing=$work/missing
	: > "$seen"; : > "$missing"
	# What the top-level `upgrade' target runs, with -n.
	printf 'SUBMAKE\tetc\tupgrade_etc\n' > "$todo"
	if [ ! -d "$subset/share/man" ]; then
		say "upgrade subset lacks share/man (make upgrade runs make makedb there): add it to the upgrade-subset list $list"
		bad=1
	else
		printf 'SUBMAKE\tshare/man\tmakedb\n' >> "$todo"
	fi
	set -f
	depth=0
	while [ -s "$todo" ] && [ $depth -lt 4 ]; do
		depth=$((depth + 1))
		mv "$todo" "$todo.now"; : > "$todo"
		while IFS= read -r entry; do
			grep -qxF "$entry" "$seen" && continue
			echo "$entry" >> "$seen"
			IFS='	'
			# shellcheck disable=SC2086
			set -- $entry
			IFS=' 	
'
			dir=$2; shift 2
			if [ ! -d "$subset/$dir" ]; then
				say "upgrade subset lacks $dir (make upgrade runs make there): add it to the upgrade-subset list $list"
				bad=1; continue
			fi
			# The subset must run on its own; its share/mk stands in for the tree's.
			if ! make_n "$subset/$dir" "$out" "$@" -m "$subset/share/mk"; then
				err=$(grep -v '^\*\*\*\|^Stop\.\|stopped in' "$out" | grep . | tail -n 1)
				say "upgrade subset: make -n $* fails in $dir: $err"
				bad=1; continue
			fi
			make_n "$src/$dir" "$out" "$@" -m "$src/share/mk" || continue
			scan "$src" "$src/$dir" "$makename" < "$out" | while IFS= read -r line; do
				kind=${line%%	*} p=${line#*	}
				case "$kind" in
				SUBMAKE) printf '%s\n' "$line" >> "$todo" ;;
				SUBMAKE\?) d=${p%%	*}; [ ! -d "$src/$d" ] || printf 'SUBMAKE\t%s\n' "$p" >> "$todo" ;;
				REQ)	[ -e "$subset/$p" ] || [ -L "$subset/$p" ] || echo "$p" ;;
				WORD)	[ -e "$subset/$p" ] || [ -L "$subset/$p" ] || [ ! -e "$src/$p" ] || echo "$p" ;;
				esac
			done >> "$missing"
		done < "$todo.now"
	done
	set +f
	for m in $(sort -u "$missing"); do
		case " $listed_missing " in *" $m "*) continue ;; esac
		if [ -e "$src/$m" ] || [ -L "$src/$m" ]; then
			say "upgrade subset lacks $m (make upgrade reads it): add it to the upgrade-subset list $list"
		elif [ -z "$listed_missing" ]; then
			# (With a listed file missing, make names the file where .PATH
			# did not find it: a consequence, already said.)
			say "make upgrade reads $m, which the source tree lacks too: the source tree $src is incomplete"
		fi
		bad=1
	done
	rm -f "$missing" "$todo" "$todo.now" "$seen" "$out"
	return $bad
}

MISSING=
case "${1:-}" in
assemble) shift; assemble "$@" ;;
check) shift; check "$@" ;;
*) echo "usage: subset.sh assemble SRCDIR LIST DEST | check SRCDIR LIST WORKDIR MAKE" >&2; exit 2 ;;
esac
