"""A trained EAR policy outside earjax: ONNX (``jax2onnx``) and ``jax.export`` artifacts.

What is exported is the deterministic actor of Sec. 3.2, a = tanh(mean(psi(phi(s), Z))),
with the LTE Z an input beside the observation, so the exported policy stays steerable by
any LTE: a training task's, an interpolated one (Eq. 1) or one CEM found (Algorithm 2).
Optionally one LTE is baked in (``lte=``), leaving the observation the only input.  The
LTE input is used as given: the policy was trained on unit LTEs (``ear_sac.normalize_lte``),
so give it unit vectors, as Eq. 1's normalize does.

Both artifacts take a batch of any size (a symbolic batch dimension ``B``) of float32
rows.  ``write`` puts a JSON sidecar beside each (``<artifact>.json``): the input and
output names and sizes, the run's training LTEs by task name, the checkpoint read and the
baked LTE, so a user outside Python knows what to feed.

- ONNX: ``jax2onnx.to_onnx`` (maintained; the jax2tf -> tf2onnx route is broken on
  current JAX); inputs ``observation`` [B, obs] and ``lte`` [B, d], output ``action``
  [B, act].  Checked against ``onnxruntime`` in tests/test_export.py.
- JAX: ``jax.export`` serialised (StableHLO with its calling convention), lowered for
  CPU and CUDA so a CPU-made artifact runs on a GPU; ``load_jax`` gives it back as a
  callable ``(observation, lte) -> action`` (or ``observation -> action``).
"""
from __future__ import annotations

import os
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from earjax import files
from earjax.networks import deterministic_action
from earjax.policy import EARRun

FORMATS = ("onnx", "jax")
JAX_PLATFORMS = ("cpu", "cuda")
INPUT_NAMES = ("observation", "lte")
OUTPUT_NAME = "action"


def actor(run: EARRun, lte: Optional[np.ndarray] = None) -> Callable[..., jax.Array]:
  """The deterministic actor of ``run``: ``(observation [B, obs], lte [B, d]) -> action``,
  or with ``lte`` ([d]) baked in, ``observation [B, obs] -> action``."""
  policy = run.policy

  def act(observation: jax.Array, lte_input: jax.Array) -> jax.Array:
    return deterministic_action(policy.decode_fn(policy.params, observation, lte_input)[0])

  if lte is None:
    return act
  baked = jnp.asarray(lte, jnp.float32)

  def act_baked(observation: jax.Array) -> jax.Array:
    return act(observation, jnp.broadcast_to(baked, observation.shape[:-1] + baked.shape))

  return act_baked


def input_sizes(run: EARRun, baked: bool) -> list[tuple[str, int]]:
  """(name, size) of each input of the exported actor."""
  sizes = [(INPUT_NAMES[0], int(run.env.observation_size))]
  return sizes if baked else sizes + [(INPUT_NAMES[1], run.lte_dim)]


def to_onnx(run: EARRun, lte: Optional[np.ndarray] = None):
  """The actor as an ONNX ``ModelProto`` with a dynamic batch dimension ``B``."""
  try:
    from jax2onnx import to_onnx as convert  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("exporting ONNX needs jax2onnx: pip install 'earjax[export]'") from e
  inputs = input_sizes(run, lte is not None)
  return convert(actor(run, lte), [("B", size) for _, size in inputs],
                 model_name="earjax_ear_actor", input_names=[name for name, _ in inputs],
                 output_names=[OUTPUT_NAME])


def to_jax(run: EARRun, lte: Optional[np.ndarray] = None) -> bytes:
  """The actor as a serialised ``jax.export.Exported`` with a symbolic batch ``B``,
  lowered for ``JAX_PLATFORMS``."""
  batch, = jax.export.symbolic_shape("B")
  specs = [jax.ShapeDtypeStruct((batch, size), jnp.float32)
           for _, size in input_sizes(run, lte is not None)]
  exported = jax.export.export(jax.jit(actor(run, lte)), platforms=JAX_PLATFORMS)(*specs)
  return bytes(exported.serialize())


def load_jax(path: str) -> Callable[..., jax.Array]:
  """The callable of a ``to_jax`` artifact at ``path``."""
  with open(path, "rb") as f:
    exported = jax.export.deserialize(bytearray(f.read()))
  return exported.call


def sidecar(run: EARRun, fmt: str, lte: Optional[np.ndarray],
            lte_source: Optional[str]) -> dict:
  """What a user of an artifact needs to feed it: inputs, outputs, the training LTEs."""
  return {
      "format": fmt,
      "inputs": [{"name": name, "shape": ["B", size], "dtype": "float32"}
                 for name, size in input_sizes(run, lte is not None)],
      "outputs": [{"name": OUTPUT_NAME, "shape": ["B", int(run.env.action_size)],
                   "dtype": "float32", "range": [-1.0, 1.0]}],
      "lte_dim": run.lte_dim,
      "lte_normalized": bool(run.config.ear_sac.normalize_lte),
      "baked_lte": None if lte is None else {
          "expression": lte_source, "vector": np.asarray(lte, np.float64).tolist()},
      "training_ltes": {name: np.asarray(row, np.float64).tolist()
                        for name, row in zip(run.task_names, np.asarray(run.ltes))},
      "family": run.config.env_name,
      "workdir": os.path.abspath(run.workdir),
      "checkpoint": run.which,
      "epoch": int(run.epoch),
      "seed_index": int(run.seed_index),
      "jax_platforms": list(JAX_PLATFORMS) if fmt == "jax" else None,
  }


def write(run: EARRun, fmt: str, path: str, lte: Optional[np.ndarray] = None,
          lte_source: Optional[str] = None) -> tuple[str, str]:
  """Writes ``run``'s actor in ``fmt`` ("onnx" or "jax") to ``path`` and its sidecar to
  ``path + ".json"``; returns both paths."""
  if fmt not in FORMATS:
    raise ValueError(f"the export format is one of {', '.join(FORMATS)}, got {fmt!r}")
  data = to_onnx(run, lte).SerializeToString() if fmt == "onnx" else to_jax(run, lte)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)
  files.write_json(path + ".json", sidecar(run, fmt, lte, lte_source))
  return path, path + ".json"
