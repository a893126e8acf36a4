# The two commands of the README: `make demo` (set up + run the main job) and `make test`
# (set up + run every test). Both work on a fresh machine with Python 3.11, pip and apt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench chaos clean vendor-charts docs-images

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The core install (editable): the light contract, then gobot-trading with its built-in plugins and the
# dependencies of the demo only (replay, paper, risk, sizing, console, the archiver on SQLite, backtest).
# (An environment made before the rename holds the distribution "gobot": removed, with its build metadata,
# or both would provide every plugin.)
$(VENV)/.runtime: $(BIN)/python pyproject.toml hookspecs/pyproject.toml
	$(BIN)/pip uninstall --quiet --disable-pip-version-check -y gobot 2>/dev/null; rm -rf gobot.egg-info
	$(BIN)/pip install --quiet --disable-pip-version-check -e ./hookspecs -e .
	touch $@

# Everything the tests touch: every extra ([all]: binance, vision, telegram, optimize, server, ...), the
# dev tools; the custom risk plugin example is installed like a user's plugin (tests/test_example_risk_plugin.py).
$(VENV)/.dev: $(VENV)/.runtime examples/gobot-risk-max-spread/pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[all,dev]"
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e examples/gobot-risk-max-spread
	touch $@

## demo: paper trading on the bundled synthetic data, 50 cycles on a simulated clock.
demo: $(VENV)/.runtime
	$(BIN)/gobot start --fresh
	$(BIN)/gobot report --html gobot_state/report.html

# The charts plugin drives the system's Chromium (playwright never downloads a browser here).
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The archiver's tests run on PostgreSQL too (this machine's server; under CI=true it must be reachable).
export GOBOT_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

## test: the linter (ruff, configured in pyproject.toml), then every test, with everything it needs installed first.
test: $(VENV)/.dev /usr/bin/chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q --durations=25  # the slowest 25: what to look at when the 20-minute budget tightens

## bench: performance figures (not part of the tests): vision and the rate limiter, then one table of issues 19 and
## 20's rows (bench/table.py runs cli_startup, backtest_vs_peers, optimizer, replay, archiver and charts; each row
## with its baseline measured in the same run, its ratio and its goal). `make bench BENCH_FLAGS=--quick`: small sizes.
BENCH_FLAGS ?=
bench: $(VENV)/.dev /usr/bin/chromium
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[bench]"  # backtesting.py and vectorbt
	$(BIN)/python bench/vision.py
	$(BIN)/python bench/rate_limiter.py
	$(BIN)/python bench/table.py $(BENCH_FLAGS)

## chaos: the reliability suite at full counts (50 SIGKILLs, every exchange fault 5 times, thousands of
## fuzz cases) and its table of figures; `make test` runs the same tests at small counts.
chaos: $(VENV)/.dev /usr/bin/chromium
	$(BIN)/python bench/chaos.py

## vendor-charts: re-fetch the pinned TradingView lightweight-charts (LIBRARY_VERSION in the chart kit) from the
## npm registry with `npm pack`, check the tarball against LIBRARY_INTEGRITY, and put its standalone build and
## LICENSE into the kit (checked in: make test and make demo never need npm). The NOTICE file stays ours (the
## upstream repository's text; the npm tarball does not carry it). To move to a new release, change
## LIBRARY_VERSION and LIBRARY_INTEGRITY (`npm view lightweight-charts@VERSION dist.integrity`) first.
CHART_KIT := hookspecs/gobot_hookspecs/tradechart
vendor-charts:
	@set -e; \
	version=$$(sed -n 's/^LIBRARY_VERSION = "\(.*\)"/\1/p' $(CHART_KIT)/__init__.py); \
	integrity=$$(sed -n 's/^ *"\(sha512-[^"]*\)"/\1/p' $(CHART_KIT)/__init__.py); \
	work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	(cd "$$work" && npm pack --silent "lightweight-charts@$$version" >/dev/null); \
	got=$$($(PYTHON) -c 'import base64, hashlib, sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$$work/lightweight-charts-$$version.tgz"); \
	if [ "$$got" != "$$integrity" ]; then echo "lightweight-charts $$version: integrity $$got, expected $$integrity" >&2; exit 1; fi; \
	tar -xzf "$$work/lightweight-charts-$$version.tgz" -C "$$work"; \
	cp "$$work/package/dist/lightweight-charts.standalone.production.js" "$$work/package/LICENSE" $(CHART_KIT)/; \
	echo "lightweight-charts $$version vendored into $(CHART_KIT) ($$integrity)"

## docs-images: the screenshots in docs/img (the tests never write them): docs/img/dashboard.png, the dashboard
## during a short paper replay of the bundled data with a trade's story open on its chart, and
## docs/img/backtest-chart.png, `gobot plot --backtest --png` of two days of BTC/USDT (docs/img/docs_images.py).
docs-images: $(VENV)/.dev /usr/bin/chromium
	$(BIN)/python docs/img/docs_images.py

clean:
	rm -rf $(VENV) gobot_state .pytest_cache *.egg-info hookspecs/*.egg-info
