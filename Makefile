# The two commands of the README: `make dev` and `make test`. Both install what npm provides.
NPM ?= npm
DEMO ?= examples/functions-demo

.PHONY: install build lint test dev clean

node_modules/.install-stamp: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

install: node_modules/.install-stamp

# dist/ is the compiled CLI; build/alyx runs it with nothing but Node (no npm, npx or tsx).
build: install
	$(NPM) run build
	@mkdir -p build
	install -m 755 bin/alyx.js build/alyx

# The shims alyx runs inside python functions are linted as Python, where pyflakes3 is installed;
# the helper that python functions import must pass mypy --strict, where mypy is (no cache in the checkout).
lint: install
	$(NPM) run lint
	$(NPM) run typecheck
	@if command -v pyflakes3 >/dev/null; then pyflakes3 shims; \
	else echo "*** SKIP: python lint of shims/: pyflakes3 is not installed (CI installs it) ***"; [ "$$REQUIRE_ALL_TOOLS" != 1 ]; fi
	@if command -v mypy >/dev/null; then mypy --strict --cache-dir=/dev/null shims/python; \
	else echo "*** SKIP: type check of shims/python: mypy is not installed (CI installs it) ***"; [ "$$REQUIRE_ALL_TOOLS" != 1 ]; fi

test: build lint
	$(NPM) test

dev: build
	build/alyx dev -C $(DEMO)

clean:
	rm -rf dist build node_modules
