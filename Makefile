# Two entry points for a fresh machine:  `make demo`  and  `make test`.
# Each creates/updates the local virtual environment (.venv) first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= out/demo
ARCH   := $(shell uname -m)
# torch + torchvision builds that install offline on this project's machines (x86_64 / aarch64)
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: venv demo test browser benchmarks clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools<81" wheel
	$(PY) -c "import torch, torchvision" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

# headless Chromium for the dashboard's end-to-end screenshot test (Debian's package)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; the browser test will be skipped"; }

demo: venv
	$(VENV)/bin/faceforge demo --out $(OUT)

test: venv browser
	$(PY) -m pytest

benchmarks: venv
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) out .pytest_cache
