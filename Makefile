# Quick start: `make run` trains/demos the default job, `make test` runs the suite.
# Python: the first of python3.11, python3.12, python3.13 that runs here
# (`make PYTHON=/path/to/python3.12 VENV=.venv312 test` picks another).
ifndef PYTHON
PYTHON := $(firstword $(foreach v,3.11 3.12 3.13,$(shell python$(v) -c '' >/dev/null 2>&1 && echo python$(v))))
endif
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := test,metaworld,warp,export,wandb,playground
# The exact set the suite passed with, installed as pip constraints (setup.cfg has the
# ranges); `make lock` writes it, `make test-latest` tries the newest the ranges allow.
LOCK := requirements.lock

.PHONY: run demo test install bench clean lock test-latest

$(PY):
	@test -n "$(PYTHON)" || { echo "error: none of python3.11, python3.12, python3.13 runs here; name one: make PYTHON=/path/to/python3.12" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)

# The install runs through uv (pinned; ~30 s on this box against pip's ~100-130 s, the
# same packages: WORKSPACE.md, "The suite's ten minutes"), compiling bytecode as pip does.
# uv reads no pip.conf: where it cannot install (an index only pip is configured for),
# pip installs the same set.
UV := uv==0.13.10

$(STAMP): $(PY) setup.cfg pyproject.toml $(LOCK)
	{ $(PY) -m pip install --quiet '$(UV)' && \
	  $(VENV)/bin/uv pip install --quiet --python $(PY) --compile-bytecode -c $(LOCK) -e '.[$(EXTRAS)]'; } || \
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.train --config=experiments/configs/halfcheetah_vel.py:cpu --workdir=runs/halfcheetah_vel_cpu

test: $(STAMP)
	$(PY) -m pytest -q --durations=15

bench: $(STAMP)
	mkdir -p runs/bench && $(PY) -m benchmarks.run --out=runs/bench/suite_cpu.json

# requirements.lock from a fresh venv: the newest versions setup.cfg's ranges allow
# (LOCK_CONSTRAINTS="-c FILE" holds them to FILE's). Run `make test` on it before committing.
lock:
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11-3.13 found; name one: make PYTHON=... lock" >&2; exit 2; }
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet $(LOCK_CONSTRAINTS) -e '.[$(EXTRAS)]'
	echo "# earjax's tested set: \`make lock\` wrote it (Python $$(.venv-lock/bin/python -c 'import platform; print(platform.python_version())'), $$(date -u +%F)); make installs it as constraints" > $(LOCK).tmp
	.venv-lock/bin/python -m pip freeze --exclude-editable >> $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .venv-lock

# Drift: the suite on the newest versions the ranges allow, without the lock, in a venv
# of its own made afresh each time (run by hand, weekly; WORKSPACE.md, "Installs that last").
test-latest:
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11-3.13 found; name one: make PYTHON=... test-latest" >&2; exit 2; }
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet -e '.[$(EXTRAS)]'
	.venv-latest/bin/python -m pip freeze --exclude-editable > .venv-latest/versions.txt
	.venv-latest/bin/python -m pytest -q --durations=15

clean:
	rm -rf $(VENV) *.egg-info

demo: $(STAMP)
	$(PY) -m experiments.demo_envs
