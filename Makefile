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
#   make fuzz     every fuzz target for FUZZ_SECONDS each (cargo-fuzz; results
#                 appended to fuzz/results.tsv; docs/campaign.md); make fuzz-seeds
#                 builds seeds from real dists and patches, make fuzz-cmin
#                 minimizes what runs found into fuzz/corpus
#   make props-long   the property tests with PROPTEST_CASES cases each
#   make fault-long   the install fault campaign with FAULT_POINTS kill points
#   make fault-world  the long fault run on real worlds: FAULT_POINTS kill points
#                 of update and rollback going back and forth between two worlds
#                 (FAULT_WORLDS, ../shared/bench/worlds.sh), a root on tmpfs
#                 (FAULT_ROOT), dists cached in FAULT_WORK; FAULT_SEED repeats a run
#   make install  the binary, manuals, configuration example, periodic job
#                 and the /usr/src fragment (PREFIX, DESTDIR, SRCDIR)

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

# The fuzz campaign (docs/campaign.md). FUZZ_TARGETS: some of them only.
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= -1
FUZZ_TARGETS ?=
PROPTEST_CASES ?= 200

fuzz-deps:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz

fuzz-seeds: fuzz-deps build
	sh fuzz/seeds.sh

fuzz: fuzz-deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) sh fuzz/run.sh run $(FUZZ_TARGETS)

fuzz-cmin: fuzz-deps
	sh fuzz/run.sh cmin $(FUZZ_TARGETS)

# docs/campaign.md with the table summed anew from fuzz/results.tsv.
fuzz-table:
	{ cat fuzz/doc-head.md; echo '### Runs so far'; echo; sh fuzz/table.sh; cat fuzz/doc-tail.md; } > docs/campaign.md

# The fault campaign's long run: 300 random kill points (docs/campaign.md).
FAULT_POINTS ?= 300

fault-long: build
	BINARYDIST_FAULT_POINTS=$(FAULT_POINTS) $(CARGO) test --release --features test-hooks --test it install_faults -- --nocapture

FAULT_WORLDS ?= /var/tmp/binarydist-worlds
FAULT_WORK ?= /var/tmp/binarydist-fault-world
FAULT_ROOT ?= /dev/shm/binarydist-fault-world
FAULT_SEED ?=

fault-world: build
	BINARYDIST_FAULT_POINTS=$(FAULT_POINTS) BINARYDIST_FAULT_WORLDS=$(FAULT_WORLDS) BINARYDIST_FAULT_WORK=$(FAULT_WORK) \
	BINARYDIST_FAULT_ROOT=$(FAULT_ROOT) BINARYDIST_FAULT_SEED=$(FAULT_SEED) \
	$(CARGO) test --release --features test-hooks --test it fault_world_long_run -- --ignored --nocapture

props-long: build
	PROPTEST_CASES=$(PROPTEST_CASES) $(CARGO) test --release --features test-hooks --test it props::

test-large: test-deps build
	sh tools/test-large.sh

bench: test-deps build
	sh bench/run.sh

# make install: where a port would put them on DragonFly (hier(7): an
# administrator's tool in sbin, its manuals under man, its periodic(8) job
# under etc/periodic of LOCALBASE, which periodic.conf's local_periodic
# reads), and the /usr/src fragment in SRCDIR/binarydists where there is a
# source tree (or a DESTDIR), with a copy under share for a target without
# /usr/src. BINARY: the binary to install (default: the release build).
BINARY ?= target/release/binarydist
FRAGMENT = binarydists/Makefile binarydists/Makefile.install binarydists/Makefile.targets binarydists/Makefile.patch binarydists/subset.sh

install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/etc/binarydist \
		$(DESTDIR)$(PREFIX)/man/man7 $(DESTDIR)$(PREFIX)/man/man8 \
		$(DESTDIR)$(PREFIX)/etc/periodic/daily $(DESTDIR)$(PREFIX)/share/binarydist/binarydists
	install -m 555 $(BINARY) $(DESTDIR)$(PREFIX)/sbin/binarydist
	gzip -9nc man/binarydist.8 > $(DESTDIR)$(PREFIX)/man/man8/binarydist.8.gz
	gzip -9nc man/binarydists.7 > $(DESTDIR)$(PREFIX)/man/man7/binarydists.7.gz
	install -m 444 etc/critical.conf etc/upgrade-subset.conf $(DESTDIR)$(PREFIX)/etc/binarydist/
	install -m 644 etc/binarydist.conf.sample $(DESTDIR)$(PREFIX)/etc/binarydist.conf.sample
	sed 's,@PREFIX@,$(PREFIX),g' etc/periodic/daily/480.binarydist > $(DESTDIR)$(PREFIX)/etc/periodic/daily/480.binarydist
	chmod 555 $(DESTDIR)$(PREFIX)/etc/periodic/daily/480.binarydist
	install -m 444 $(FRAGMENT) $(DESTDIR)$(PREFIX)/share/binarydist/binarydists/
	@# the /usr/src fragment, where there is a DragonFly source tree (or a DESTDIR)
	if [ -f $(SRCDIR)/Makefile.inc1 ] || [ -n "$(DESTDIR)" ]; then \
		install -d $(DESTDIR)$(SRCDIR)/binarydists && \
		install -m 444 $(FRAGMENT) $(DESTDIR)$(SRCDIR)/binarydists/; \
	fi

clean:
	$(CARGO) clean

.PHONY: all build demo test-deps test check-bsd test-large bench install clean fuzz-deps fuzz-seeds fuzz fuzz-cmin fuzz-table props-long fault-long fault-world
