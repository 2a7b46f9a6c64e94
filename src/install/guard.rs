//! Guards for `make upgrade` against another root (`--root` other than `/`).
//!
//! DragonFly's `etc/Makefile` honours DESTDIR except in two places: `ldconfig
//! -R` (and `ldconfig -m`) rebuild the running system's hints, and the dhcpcd
//! lines `rm -rf` a chroot directory whose path they read from the root's
//! passwd (`pw usershow _dhcp`) without putting DESTDIR in front of it. So for
//! another root, make upgrade runs with a directory of two shims first in PATH:
//! `ldconfig` does nothing (the hints live in /var/run, which the root's own
//! rc.d/ldconfig rebuilds at every boot), and `rm` passes on only the operands
//! that resolve inside the root, saying which it skipped.
//!
//! Why not the alternatives: a chroot into the root needs a root whose
//! programs run on this kernel and a devfs mounted in it (a disk image for
//! another machine may have neither), and refusing would make `--root` useless
//! for worlds. What the shims cannot catch is a command run by absolute path;
//! the real tree runs none that ignore DESTDIR.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;

/// The root the shims keep `make upgrade` inside, canonical.
pub const ROOT_ENV: &str = "BINARYDIST_GUARD_ROOT";
/// PATH without the shims, for the real commands.
pub const PATH_ENV: &str = "BINARYDIST_GUARD_PATH";

const LDCONFIG: &str = r#"#!/bin/sh
# binarydist guard (make upgrade into another root): ldconfig changes the
# hints of the running system whatever DESTDIR says. Skipped: the root's
# rc.d/ldconfig rebuilds its own hints at boot.
echo "binarydist: guard: skipped ldconfig $*: it would change the running system's hints, not those of $BINARYDIST_GUARD_ROOT (rebuilt there at boot)" >&2
exit 0
"#;

const RM: &str = r#"#!/bin/sh
# binarydist guard (make upgrade into another root): the operands of rm that
# resolve outside $BINARYDIST_GUARD_ROOT are skipped, the rest go to rm.
root=$BINARYDIST_GUARD_ROOT
PATH=$BINARYDIST_GUARD_PATH; export PATH
inside() {
	case $1 in /*) p=$1 ;; *) p=$PWD/$1 ;; esac
	while :; do case $p in ?*/) p=${p%/} ;; *) break ;; esac; done
	base=${p##*/} dir=${p%/*}
	[ -n "$dir" ] || dir=/
	# Where the kernel would look (symlinks followed); a directory that does
	# not exist holds nothing to remove.
	dir=$(cd "$dir" 2>/dev/null && pwd -P) || return 0
	case $base in .|..) t=$(cd "$dir/$base" && pwd -P) ;; *) t=${dir%/}/$base ;; esac
	case $t in "$root"/?*) return 0 ;; esac
	return 1
}
n=$# skipped=0 opts=yes
while [ "$n" -gt 0 ]; do
	a=$1; shift; n=$((n - 1))
	if [ $opts = yes ]; then
		case $a in
		--) opts=no; set -- "$@" "$a"; continue ;;
		-?*) set -- "$@" "$a"; continue ;;
		esac
		opts=no
	fi
	if inside "$a"; then
		set -- "$@" "$a"
	else
		echo "binarydist: guard: not removing $a: it is outside the root $root (make upgrade names it without DESTDIR)" >&2
		skipped=$((skipped + 1))
	fi
done
if [ "$skipped" -gt 0 ]; then
	for a; do case $a in -*) ;; *) exec rm "$@" ;; esac; done
	exit 0
fi
exec rm "$@"
"#;

/// The shims' directory, a private temporary directory of this process
/// (mode 0700, under TMPDIR), removed when dropped. Never in the root: whoever
/// owns the tree there could put their own `rm` in its place.
pub struct Guards {
    dir: tempfile::TempDir,
}

impl Guards {
    /// Writes the shims into a fresh private directory.
    pub fn install() -> io::Result<Guards> {
        let dir = tempfile::Builder::new().prefix("binarydist-guard.").tempdir()?;
        for (name, text) in [("ldconfig", LDCONFIG), ("rm", RM)] {
            let p = dir.path().join(name);
            std::fs::write(&p, text)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o555))?;
        }
        Ok(Guards { dir })
    }

    /// PATH with the shims first.
    pub fn path(&self, path: &std::ffi::OsStr) -> OsString {
        let mut p = OsString::from(self.dir.path().as_os_str());
        if !path.is_empty() {
            p.push(":");
            p.push(path);
        }
        p
    }
}
