# layerfs: `make demo` shows it working, `make test` proves it. Both set everything up first.
.PHONY: all setup build test test-container demo install uninstall clean

all: build

setup:
	bash scripts/setup.sh

build: setup

test: setup
	bash scripts/test.sh

# The suite as in a privileged container whose root (and /tmp) is overlayfs, without docker:
# /tmp on kernel overlayfs in a private mount namespace (scripts/test-in-container.sh).
# TESTS=... runs a part of it (tap's file arguments), as CI does.
test-container: setup
	bash scripts/test-in-container.sh $(TESTS)

demo: setup
	bash scripts/demo.sh

# `layerfs` on PATH, so that `mount -t fuse.layerfs` and /etc/fstab work (mount.fuse runs it).
install: setup
	ln -sf "$(CURDIR)/bin/layerfs" /usr/local/bin/layerfs

uninstall:
	rm -f /usr/local/bin/layerfs

clean:
	rm -rf dist .tap
