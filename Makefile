# Two entry points (see README): `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared
OUT ?= out

.PHONY: setup demo test lint typecheck clean

setup: $(VENV)/.installed

# torch first, pinned to the CPU build that lies on this kind of machine: a plain `torch`
# requirement would pull a multi-GB CUDA build from the index.
# Debian packages: EGL + Mesa for headless OpenGL rendering in `mvface synth` (without them the
# renderer falls back to a slower numpy rasterizer, so a failed install is only a warning).
DEB_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri

$(VENV)/.installed: pyproject.toml
	@if ! ldconfig -p | grep -q 'libEGL.so.1'; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $(DEB_PACKAGES) \
	    || echo "warning: could not install $(DEB_PACKAGES); rendering falls back to numpy"; \
	  else echo "warning: run 'sudo apt-get install $(DEB_PACKAGES)' for fast rendering"; fi; fi
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dlib,dev]'
	touch $@

# The main job: `mvface demo` -- the base model (`base`) and its plug-in fine-tune
# (`base+`) side by side on novel views of a photo that ships with scikit-image, synthesized
# at yaw -75..75 degrees with known landmarks (out/demo). Needs no data and no network. With
# ../shared beside the repo it also runs on the sample photos there (out/demo-samples).
demo: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/mvface demo --output $(OUT)/demo
	@if [ -d "$(SHARED)/data/samples" ]; then \
	  OMP_NUM_THREADS=1 $(VENV)/bin/mvface demo --input $(SHARED)/data/samples \
	    --output $(OUT)/demo-samples; fi

lint:
	$(VENV)/bin/ruff check src tests benchmarks scripts tools
	$(VENV)/bin/ruff format --check src tests benchmarks scripts tools

typecheck:
	$(VENV)/bin/mypy

# pytest exits 5 when it collects nothing: that is a failure here, not a pass.
test: setup lint typecheck
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "test: pytest collected no tests"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
