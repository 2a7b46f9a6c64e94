#!/bin/sh
#
# mkrev.sh DEST N: writes revision N (1 to 4) of the sample source tree
# to DEST, replacing what DEST held (DEST/binarydists, the fragment a build
# machine adds, is kept). Revision 1 is examples/src; revision N is
# revision N-1 with examples/revisions/N copied over it and the paths in
# examples/revisions/N/REMOVE deleted:
#
#   2: hello changed, oldtool removed (and listed in TO_REMOVE), newtool
#      added, libc.so.8 -> libc.so.9 (the old one in TO_REMOVE_LATE), a new
#      kernel version
#   3: wc changed, rtld changed, /sbin/sysinfo added, the tmpfs module
#      changed and added to CUSTOM, a new kernel version
#   4: wc changed again, and the motd: the world only (the kernels and the
#      initrd build the same as in 3)
#
set -eu
dest=$1 rev=$2
here=$(cd "$(dirname "$0")" && pwd)
case "$rev" in 1|2|3|4) ;; *) echo "mkrev.sh: revision $rev: there are 1 to 4" >&2; exit 2 ;; esac
mkdir -p "$dest"
for f in "$dest"/* "$dest"/.[!.]*; do
	case "$f" in "$dest/binarydists"|"$dest/*"|"$dest/.[!.]*") continue ;; esac
	rm -rf "$f"
done
# Extracted with the current time (tar -m): files of a new revision must
# look newer than the objects built from the previous one.
(cd "$here/src" && tar cf - .) | (cd "$dest" && tar xmf -)
n=2
while [ "$n" -le "$rev" ]; do
	(cd "$here/revisions/$n" && tar cf - --exclude=./REMOVE .) | (cd "$dest" && tar xmf -)
	if [ -f "$here/revisions/$n/REMOVE" ]; then
		while read -r p; do rm -rf "${dest:?}/$p"; done < "$here/revisions/$n/REMOVE"
	fi
	n=$((n + 1))
done
