#!/usr/bin/env bash
# brax's own SAC and earjax's training epoch at the brax-matched setting, back to back.
#
#   bash benchmarks/peers/side_by_side.sh [OUT_DIR]      # from the repo root, after `make run`
#
# OUT_DIR (or $PEERS_OUT_DIR) defaults to runs/peers; it holds brax_sac.json,
# earjax_brax_matched.json and side_by_side.json.  $PEERS_BRAX_ARGS is passed on to
# brax_sac.py (e.g. "--env_steps=30000"); leave it empty for the measurement.
# brax 0.14.2 needs jax 0.9.2 and earjax pins jax 0.10.2, so brax runs in its own venv
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
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
read -r -a brax_args <<< "${PEERS_BRAX_ARGS:-}"

# (b) brax's SAC in its venv.
echo "== brax SAC ($PEERS_VENV)"
brax_started="$(now)"
"$PEERS_VENV/bin/python" -m benchmarks.peers.brax_sac --out="$OUT_DIR/brax_sac.json" \
  ${brax_args[@]+"${brax_args[@]}"}
brax_finished="$(now)"

# (c) right after: earjax's own measurement in earjax's venv.
echo "== earjax (.venv)"
earjax_started="$(now)"
.venv/bin/python -m benchmarks.run --sections=train --train=brax_matched --repeats=3 \
  --out="$OUT_DIR/earjax_brax_matched.json"
earjax_finished="$(now)"

# (d) the two side by side.
echo "== side by side"
.venv/bin/python -m benchmarks.peers.compare \
  --brax="$OUT_DIR/brax_sac.json" --earjax="$OUT_DIR/earjax_brax_matched.json" \
  --out="$OUT_DIR/side_by_side.json" \
  --brax_started="$brax_started" --brax_finished="$brax_finished" \
  --earjax_started="$earjax_started" --earjax_finished="$earjax_finished"
