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

# The main job. Until `mvface demo` exists (issue #6) this is the most complete real job: the
# shipped model (mediapipe-68) finds faces and landmarks in the sample photos (overlays in
# $(OUT)/detect/overlays) and is scored on the AFLW2000-3D dev half and 300-W HELEN test.
demo: setup
	@if [ ! -d "$(SHARED)/data" ]; then \
	  echo "demo: the sample and evaluation data is expected in $(SHARED)/data (see README)"; exit 1; fi
	OMP_NUM_THREADS=1 $(VENV)/bin/mvface detect $(SHARED)/data/samples --model mediapipe-68 \
	  --out $(OUT)/detect --draw
	OMP_NUM_THREADS=1 $(VENV)/bin/mvface eval --dataset aflw2000-3d \
	  --root $(SHARED)/data/aflw2000_3d_dev --model mediapipe-68 --out $(OUT)/eval-aflw2000
	OMP_NUM_THREADS=1 $(VENV)/bin/mvface eval --dataset 300w \
	  --root $(SHARED)/data/300w/helen_testset --model mediapipe-68 --out $(OUT)/eval-helen

lint:
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

typecheck:
	$(VENV)/bin/mypy

# pytest exits 5 when it collects nothing: that is a failure here, not a pass.
test: setup lint typecheck
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "test: pytest collected no tests"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache
