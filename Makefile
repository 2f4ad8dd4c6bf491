# painterly: `make run` stylizes a bundled photo, `make test` runs the test suite.
# Both create ./.venv and install what they need (torch 2.13.0 CPU first, so pip never fetches a CUDA build).
# A plain `pip install .` needs no torch: stylize and transfer run the shipped ONNX models on onnxruntime.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.painterly-installed
PHOTO   ?= painterly/assets/photos/lake.jpg
STYLE   ?= starry-night

.PHONY: install run test bench lint clean

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
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check painterly tests benchmarks

clean:
	rm -rf out build *.egg-info .pytest_cache
