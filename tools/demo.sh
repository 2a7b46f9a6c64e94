#!/bin/sh
# make demo: pack a small sample stage and show what was made.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bd=$top/target/release/binarydist
demo=$top/demo
rm -rf "$demo" && mkdir -p "$demo/stage/bin" "$demo/stage/lib" "$demo/stage/libexec"
printf '#!/bin/sh\necho hello\n' > "$demo/stage/bin/hello" && chmod 755 "$demo/stage/bin/hello"
echo libc > "$demo/stage/lib/libc.so.8"
echo rtld > "$demo/stage/libexec/ld-elf.so.2"
SOURCE_DATE_EPOCH=1700000000 "$bd" pack --stage "$demo/stage" --series world \
	--arch x86_64 --branch master --rev v0.1 -o "$demo/dist"
ls -l "$demo/dist"
"$bd" info "$demo"/dist/*.tar.gz
