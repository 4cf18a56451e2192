# Quick start: `make run` trains/demos the default job, `make test` runs the suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo test install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,metaworld,warp,export,wandb,playground]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.train --config=experiments/configs/halfcheetah_vel.py:cpu --workdir=runs/halfcheetah_vel_cpu

test: $(STAMP)
	$(PY) -m pytest -q --durations=15

bench: $(STAMP)
	mkdir -p runs/bench && $(PY) -m benchmarks.run --out=runs/bench/suite_cpu.json

clean:
	rm -rf $(VENV) *.egg-info

demo: $(STAMP)
	$(PY) -m experiments.demo_envs
