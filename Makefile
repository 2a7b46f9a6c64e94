# binarydist: developer entry points. Works with GNU make and with bmake
# (DragonFly's make): plain rules only, the logic lives in tools/*.sh.
#
#   make          build the release binary
#   make demo     build, then run the main job on the bundled sample
#   make test     install what the tests need (if missing), keep the shipped
#                 binary as target/shipped/binarydist, check formatting and
#                 lints, run every test (with the test-hooks feature)
#   make test-large   the end-to-end run on real worlds (../shared/bench/worlds.sh)
#   make check-bsd    clippy of the BSD cfg code for x86_64-unknown-freebsd (needs
#                 that rustup target; DragonFly's has no prebuilt std)
#   make bench    time binarydist against bsdiff, xdelta3, zstd, tar|gzip
#   make install  install the binary and the /usr/src fragment under PREFIX

CARGO ?= cargo
PREFIX ?= /usr/local
SRCDIR ?= /usr/src

all: build

build:
	$(CARGO) build --release

demo: build
	sh tools/demo.sh

test-deps:
	sh tools/test-deps.sh

# The suite needs the test-hooks feature, and cargo then rebuilds
# target/release/binarydist with it: the binary as shipped (no features) is
# kept apart first, for the test that shows it ignores every test variable.
# Only this target enables the feature; `make install` rebuilds without it.
test: test-deps build
	mkdir -p target/shipped
	cp target/release/binarydist target/shipped/binarydist
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --all-features -- -D warnings
	$(CARGO) test --release --features test-hooks

check-bsd:
	rustup target add x86_64-unknown-freebsd
	$(CARGO) clippy --target x86_64-unknown-freebsd --all-features -- -D warnings

test-large: test-deps build
	sh tools/test-large.sh

bench: test-deps build
	sh bench/run.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/binarydist
	install -m 555 target/release/binarydist $(DESTDIR)$(PREFIX)/bin/binarydist
	install -m 444 etc/critical.conf etc/upgrade-subset.conf $(DESTDIR)$(PREFIX)/etc/binarydist/
	install -m 644 etc/binarydist.conf.sample $(DESTDIR)$(PREFIX)/etc/binarydist.conf.sample
	@# the /usr/src fragment, where there is a DragonFly source tree (or a DESTDIR)
	if [ -f $(SRCDIR)/Makefile.inc1 ] || [ -n "$(DESTDIR)" ]; then \
		install -d $(DESTDIR)$(SRCDIR)/binarydists && \
		install -m 444 binarydists/Makefile binarydists/Makefile.targets binarydists/Makefile.patch binarydists/subset.sh $(DESTDIR)$(SRCDIR)/binarydists/; \
	fi

clean:
	$(CARGO) clean

.PHONY: all build demo test-deps test check-bsd test-large bench install clean
