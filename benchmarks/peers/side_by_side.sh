#!/usr/bin/env bash
# brax's own SAC and earjax's training epoch at the brax-matched setting, and both envs
# alone, at the same physics on both sides: brax's asset's solver budget, then
# HalfCheetah-Vel's, interleaved, $PEERS_REPEATS times (default 3).
#
#   bash benchmarks/peers/side_by_side.sh [OUT_DIR]      # from the repo root, after `make run`
#
# OUT_DIR (or $PEERS_OUT_DIR) defaults to runs/peers; it holds r<k>/<budget>/ with each
# run's record and side_by_side_matched.json (benchmarks/peers/matched.py).
# $PEERS_BRAX_ARGS is passed on to brax_sac.py (e.g. "--env_steps=30000"); leave it
# empty for the measurement.
# brax 0.14.2 needs jax 0.9.2 and earjax jax >= 0.10.1, so brax runs in its own venv
# ($PEERS_VENV, default .venv-peers), made here from requirements-brax.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT_DIR="${1:-${PEERS_OUT_DIR:-runs/peers}}"
PEERS_VENV="${PEERS_VENV:-.venv-peers}"
PYTHON="${PYTHON:-python3.11}"
REQUIREMENTS=benchmarks/peers/requirements-brax.txt

case "$(realpath -m "$OUT_DIR")/" in
  "$(realpath -m benchmarks/results)"/*)
    echo "side_by_side.sh: write under runs/, not benchmarks/results ($OUT_DIR)" >&2
    exit 2 ;;
esac
if [[ ! -x .venv/bin/python ]]; then
  echo "side_by_side.sh: earjax's venv .venv is missing: run 'make run' (or 'make install') first" >&2
  exit 1
fi

# (a) brax's venv: made once, reinstalled when requirements-brax.txt changes.
if [[ ! -x "$PEERS_VENV/bin/python" ]]; then
  echo "== creating $PEERS_VENV ($PYTHON)"
  "$PYTHON" -m venv "$PEERS_VENV"
  echo '*' > "$PEERS_VENV/.gitignore"   # keep the venv out of git status
  "$PEERS_VENV/bin/python" -m pip install --quiet --upgrade pip
fi
STAMP="$PEERS_VENV/.installed-requirements"
if ! cmp -s "$REQUIREMENTS" "$STAMP"; then
  echo "== installing $REQUIREMENTS into $PEERS_VENV"
  "$PEERS_VENV/bin/python" -m pip install --quiet -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$STAMP"
fi

mkdir -p "$OUT_DIR"
read -r -a brax_args <<< "${PEERS_BRAX_ARGS:-}"
REPEATS="${PEERS_REPEATS:-3}"

# (b) Interleaved, for each repeat: each solver budget on BOTH sides (brax's asset's 4/50,
# HalfCheetah-Vel's 4/8): brax's SAC and env alone, earjax's training epoch and env alone
# (64 envs), each in its venv.  Nothing else should run meanwhile.
if compgen -G "$OUT_DIR/r[0-9]*" > /dev/null; then
  echo "side_by_side.sh: $OUT_DIR holds an earlier measurement's r<k>/ folders; give another OUT_DIR" >&2
  exit 2
fi
brax_side() {   # brax's SAC, then its env alone
  echo "== repeat $rep, $budget's solver budget: brax ($PEERS_VENV)"
  "$PEERS_VENV/bin/python" -m benchmarks.peers.brax_sac --out="$dir/brax_sac.json" \
    ${brax_solver[@]+"${brax_solver[@]}"} ${brax_args[@]+"${brax_args[@]}"}
  "$PEERS_VENV/bin/python" -m benchmarks.peers.brax_env --batch=64 --out="$dir/brax_env.json" \
    ${brax_solver[@]+"${brax_solver[@]}"}
}
earjax_side() {   # earjax's training epoch, then its env alone
  echo "== repeat $rep, $budget's solver budget: earjax (.venv)"
  .venv/bin/python -m benchmarks.run --sections=train --train="$earjax_train" --repeats=3 \
    --out="$dir/earjax_train.json"
  .venv/bin/python -m benchmarks.env_throughput --envs=halfcheetah_vel --batch=64 \
    "${earjax_solver[@]}" --timeout_s=0 --out="$dir/earjax_env.json"
}
for rep in $(seq 1 "$REPEATS"); do
  # The order alternates: odd repeats brax's budget and brax's side first, even ones not.
  budgets=(brax earjax); (( rep % 2 )) || budgets=(earjax brax)
  for budget in "${budgets[@]}"; do
    dir="$OUT_DIR/r$rep/$budget"
    mkdir -p "$dir"
    if [[ $budget == brax ]]; then
      brax_solver=(); earjax_train=brax_matched_brax_solver; earjax_solver=(--solver=4,50)
    else
      brax_solver=(--solver_iterations=4 --ls_iterations=8); earjax_train=brax_matched
      earjax_solver=(--solver=4,8)
    fi
    if (( rep % 2 )); then brax_side; earjax_side; else earjax_side; brax_side; fi
  done
done

# (c) The summary: medians over the repeats, both ratios, settings_match from the models.
echo "== side by side"
.venv/bin/python -m benchmarks.peers.matched --dir="$OUT_DIR" \
  --out="$OUT_DIR/side_by_side_matched.json"
