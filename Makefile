# The front door: `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# torch is installed first, pinned, so that nothing can pull an unpinned CUDA build.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?= -n 2

.PHONY: env test-env test demo clean

$(VENV)/.core-installed: setup.py requirements/runtime.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH)"
	$(PIP) install -r requirements/runtime.txt
	$(PIP) install --no-deps -e .
	touch $@

$(VENV)/.tests-installed: $(VENV)/.core-installed requirements/tests.txt requirements/waymo.txt
	$(PIP) install -r requirements/tests.txt
	# Waymo's protobuf modules without the wheel's TensorFlow pins.
	$(PIP) install --no-deps -r requirements/waymo.txt
	touch $@

env: $(VENV)/.core-installed

# The HTML-view test drives headless Chromium (Debian package); installed when missing
# (apt-get as root, else sudo). If it cannot be installed the test fails under CI=1.
CHROMIUM_INSTALL ?= $$( [ "$$(id -u)" = 0 ] || echo sudo ) sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium'

test-env: $(VENV)/.tests-installed
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		$(CHROMIUM_INSTALL) || echo "warning: could not install chromium (apt-get); the browser test fails under CI=1 and is skipped otherwise"

test: test-env
	$(PY) -m pytest $(PYTEST_ARGS) tests

# synthetic city -> UniScene KL-VAE + layout OccDiT (demo variants of the CPU recipes) -> one
# 4D scene per val layout (GT | sample | difference GIFs) + their statistics next to the val split
demo: env
	OMP_NUM_THREADS=2 $(PY) tools/demo.py --out demo_out

clean:
	rm -rf $(VENV) demo_out work_dirs
