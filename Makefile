# edge-agent: `make demo` and `make test` do all the set-up on a fresh Debian machine.
SHELL := /bin/bash
APT_PACKAGES := openssl libssl-dev libsqlite3-dev sqlite3 libmodbus-dev mosquitto mosquitto-clients libmosquitto-dev librdkafka-dev kcat socat pkg-config python3-venv chromium
VENV := .venv
SWIFT ?= swift
BIN := .build/debug/edge-agent
# The release build (package, benchmarks): the Swift runtime linked in statically, every function
# in its own section, and the functions a running line executes laid out together
# (packaging/hot-text.order; `make hot-text` rewrites it), so the code the agent keeps touching
# fills about a MiB of pages instead of being spread over the binary's 37 MiB. Symbols are bound
# at load (`-z now`): a lazy binding later would read the executable's 31,000 dynamic symbols.
RELEASE := $(SWIFT) build -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections \
  -Xcc -ffunction-sections -Xlinker --section-ordering-file=$(CURDIR)/packaging/hot-text.order \
  -Xlinker -z -Xlinker now

.PHONY: deps build test lint graph format demo bench soak check-configs deb deb-check hot-text clean
VERSION := $(shell sed -n 's/.*current = "\(.*\)".*/\1/p' Sources/EdgeAgentCore/Model/EdgeAgentVersion.swift)
DEB := edge-agent_$(VERSION)_amd64.deb

## deps: install the missing system packages (apt) and the Python test tools (venv)
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@test -x $(VENV)/bin/python3 || python3 -m venv $(VENV)
	@$(VENV)/bin/python3 -c 'import pymodbus, serial' 2>/dev/null || $(VENV)/bin/pip install -q 'pymodbus==3.16.1' 'pyserial>=3.5'

## build: debug build of everything
build: deps
	$(SWIFT) build

## test: unit and integration tests (the integration tests run the built binary)
test: build
	EDGE_AGENT_BIN=$(CURDIR)/$(BIN) $(SWIFT) test

## lint: one format (.swift-format: the toolchain's swift format, 4 spaces, 120 columns)
lint:
	$(SWIFT) format lint --strict --parallel --recursive Sources Tests Package.swift

## graph: the dependencies between the folders of the agent's library; fails on a cycle
graph:
	python3 scripts/folder-graph.py Sources/EdgeAgent

## format: rewrite the sources in that format
format:
	$(SWIFT) format format --in-place --parallel --recursive Sources Tests Package.swift

## demo: simulator + agent + reference receiver on loopback, with a receiver outage
demo: build
	$(BIN) demo --duration 60s --outage 20s $(DEMO_ARGS)

## soak: 100 kill -9 cycles under load near max_size (not in CI; about ten minutes)
soak: build
	EDGE_SOAK=1 EDGE_AGENT_BIN=$(CURDIR)/$(BIN) $(SWIFT) test --filter CrashTests 2>&1 | grep -E '^soak:|✘|passed after|failed after'

## bench: the benchmarks, release build, one JSON object per line
bench: deps
	$(RELEASE) --product edge-agent
	$(RELEASE) --product edge-bench
	$(RELEASE) --product kafka-mock
	.build/release/edge-bench $(BENCH)

## check-configs: every example configuration passes `edge-agent check` (secrets and certificates
## come from systemd's directories there; here, from a scratch folder, certificates made by openssl)
check-configs: build
	@dir=$$(mktemp -d); touch $$dir/mw-token $$dir/mqtt $$dir/kafka; \
	openssl req -x509 -newkey rsa:2048 -nodes -keyout $$dir/client.key -out $$dir/client.pem -days 1 -subj /CN=check \
	  2>/dev/null && cp $$dir/client.pem $$dir/ca.pem; \
	for f in edge-config/*.yaml; do \
	  CREDENTIALS_DIRECTORY=$$dir CONFIGURATION_DIRECTORY=$$dir MW_API_KEY=example $(BIN) check --config $$f || exit 1; \
	done; rm -rf $$dir

## deb: edge-agent_VERSION_amd64.deb for a bare Debian/Ubuntu box: the release binary with the
## Swift runtime linked in statically (no Swift on the target), stripped; the systemd unit; a
## default /etc/edge-agent/agent.yaml (conffile); the example configs under /usr/share/doc.
deb: deps
	$(RELEASE) --product edge-agent
	rm -rf .build/deb && mkdir -p .build/deb/DEBIAN .build/deb/usr/bin .build/deb/lib/systemd/system \
	  .build/deb/etc/edge-agent .build/deb/usr/share/doc/edge-agent/examples
	install -m 0755 .build/release/edge-agent .build/deb/usr/bin/edge-agent
	strip --strip-unneeded .build/deb/usr/bin/edge-agent
	install -m 0644 systemd/edge-agent.service .build/deb/lib/systemd/system/edge-agent.service
	install -m 0644 packaging/agent.yaml .build/deb/etc/edge-agent/agent.yaml
	install -m 0644 edge-config/*.yaml systemd/edge-agent.service.d/serial.conf.example .build/deb/usr/share/doc/edge-agent/examples/
	install -m 0644 README.md .build/deb/usr/share/doc/edge-agent/README.md
	install -m 0644 packaging/deb/conffiles .build/deb/DEBIAN/conffiles
	install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm .build/deb/DEBIAN/
	sed -e 's/@VERSION@/$(VERSION)/' -e "s/@SIZE@/$$(du -sk .build/deb --exclude=DEBIAN | cut -f1)/" \
	  -e "s/@DEPENDS@/$$(packaging/deb/depends .build/deb/usr/bin/edge-agent)/" packaging/deb/control > .build/deb/DEBIAN/control
	dpkg-deb --root-owner-group --build .build/deb $(DEB)
	@ls -l $(DEB); echo "binary: $$(stat -c %s .build/deb/usr/bin/edge-agent) bytes"

## deb-check: what CI shows of the package (needs root): installs it, runs it from the installed
## path, checks that it needs no Swift library, removes it and finds the state directory kept
deb-check: deb
	packaging/deb/check $(DEB)

## hot-text: rewrite packaging/hot-text.order from the demo line run under callgrind and perf
## (needs valgrind and perf; about 6 minutes); the next release build lays those functions out
## together. Run it again after that build: it adds what the new layout shows.
hot-text:
	$(RELEASE) --product edge-agent -Xlinker -Map=$(CURDIR)/.build/release/edge-agent.map
	packaging/hot-text .build/release/edge-agent .build/release/edge-agent.map
	@# the list is no build input SwiftPM tracks: removing the binary makes the next build relink
	rm .build/release/edge-agent

clean:
	rm -rf .build data
