#!/bin/sh
# Installs what the tests need, when it is missing: a Rust toolchain is assumed
# (cargo); the rest comes from Debian's packages on Linux, from pkg on DragonFly.
set -eu
# make test runs cargo fmt --check and clippy.
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
need=""
command -v bmake >/dev/null 2>&1 || need="$need bmake"
command -v bsdtar >/dev/null 2>&1 || need="$need libarchive-tools"
command -v gzip >/dev/null 2>&1 || need="$need gzip"
command -v pigz >/dev/null 2>&1 || need="$need pigz" # reads our dists in the tests; bench/pack.sh's anchor
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
tar --version 2>/dev/null | grep -q 'GNU tar' || need="$need tar"
command -v python3 >/dev/null 2>&1 || need="$need python3"
command -v strace >/dev/null 2>&1 || need="$need strace" # the calls that make an install durable
command -v patch >/dev/null 2>&1 || need="$need patch"
command -v minisign >/dev/null 2>&1 || need="$need minisign" # the CLI checks what binarydist signs, and signs for it
command -v openssl >/dev/null 2>&1 || need="$need openssl" # the HTTPS test's certificate
command -v git >/dev/null 2>&1 || need="$need git" # check on a git checkout (tests/it/fragment.rs)
command -v mandoc >/dev/null 2>&1 || need="$need mandoc" # mandoc -T lint of the manuals (tests/it/workflow.rs)
[ -x /usr/bin/time ] || need="$need time" # peak RSS of `binarydist diff` and `patch` in the memory test
command -v bsdiff >/dev/null 2>&1 || need="$need bsdiff" # bench/patch.sh's anchors
command -v xdelta3 >/dev/null 2>&1 || need="$need xdelta3"
command -v zstd >/dev/null 2>&1 || need="$need zstd"
[ -z "$need" ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: installing$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq $need >/dev/null
else
	echo "test-deps: please install:$need" >&2
	exit 1
fi
