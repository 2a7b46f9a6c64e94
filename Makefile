# binarydist: developer entry points. Works with GNU make and with bmake
# (DragonFly's make): plain rules only, the logic lives in tools/*.sh.
#
#   make          build the release binary
#   make demo     build, then run the main job on the bundled sample
#   make test     install what the tests need (if missing), run every test
#   make test-large   the end-to-end run on real worlds (../shared/bench/worlds.sh)
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

test: test-deps
	$(CARGO) test --release --features test-hooks

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

.PHONY: all build demo test-deps test test-large bench install clean
