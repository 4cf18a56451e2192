"""A compression run's directory: the dataset and one trained autoencoder per latent size.

``DIR/dataset.npz`` (``PolicyDataset.save``); ``DIR/autoencoder_z<d>/``: ``config.json``
(the policy space and the ``AutoencoderConfig``) and ``params/`` (orbax: the
autoencoder's parameters, the normaliser and the dataset's codes f(θ) [N, d]).
``load(DIR, latent_dim)`` gives ``decode(z) -> policy`` like ``earjax.policy.load_policy``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from earjax.compression.autoencoder import (AutoencoderConfig, Compressor, Normalizer,
                                            encoder_inputs)
from earjax.compression.dataset import PolicyDataset
from earjax.compression.policies import PolicySpace

DATASET = "dataset.npz"


def dataset_path(workdir: str) -> str:
  return os.path.join(workdir, DATASET)


def autoencoder_dir(workdir: str, latent_dim: int) -> str:
  return os.path.join(workdir, f"autoencoder_z{int(latent_dim)}")


def latent_dims(workdir: str) -> list[int]:
  """The latent sizes trained in ``workdir``."""
  if not os.path.isdir(workdir):
    return []
  found = (re.fullmatch(r"autoencoder_z(\d+)", name) for name in os.listdir(workdir))
  return sorted(int(m.group(1)) for m in found if m)


def save_autoencoder(workdir: str, compressor: Compressor, params, dataset: PolicyDataset):
  """Writes ``DIR/autoencoder_z<d>/`` (replacing an older one of that size)."""
  path = os.path.abspath(autoencoder_dir(workdir, compressor.config.latent_dim))
  inputs = encoder_inputs(dataset, compressor.config.encoder_input)
  codes = jax.jit(compressor.encode)(params, jnp.asarray(inputs))
  space = compressor.space
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump({"observation_size": space.observation_size, "action_size": space.action_size,
               "policy_hidden": list(space.hidden), "env_name": dataset.env_name,
               "autoencoder": dataclasses.asdict(compressor.config)}, f, indent=1)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(path, "params"),
                    {"params": params, "normalizer": {
                        k: v for k, v in dataclasses.asdict(compressor.normalizer).items()
                        if v is not None}, "codes": codes}, force=True)
  checkpointer.wait_until_finished()


@dataclasses.dataclass
class CompressedSpace:
  """A trained autoencoder: ``decode(z)`` -> θ, ``policy(z)`` -> obs -> action."""
  env_name: str
  space: PolicySpace
  compressor: Compressor
  params: dict
  codes: np.ndarray       # the dataset's policies in Z [N, d]

  @property
  def latent_dim(self) -> int:
    return self.compressor.config.latent_dim

  def decode(self, z: jax.Array) -> jax.Array:
    """θ [..., D] of latent points ``z`` [..., d]."""
    return self.compressor.decode(self.params, z)

  def policy(self, z: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """The decoded policy of one latent point, as a function of the observation."""
    theta = self.decode(jnp.asarray(z, jnp.float32))
    return lambda obs: self.space.act(theta, obs)


def _restore_here(path: str):
  """The checkpoint's arrays on this process's first device, whatever device saved them
  (a restore without a target would ask for the saving device's layout)."""
  checkpointer = ocp.StandardCheckpointer()
  here = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here),
                        checkpointer.metadata(path).item_metadata.tree)
  return checkpointer.restore(path, target)


def load(workdir: str, latent_dim: Optional[int] = None) -> CompressedSpace:
  """The autoencoder of ``latent_dim`` in ``workdir`` (the only one if not given)."""
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"no compression run at {workdir}")
  dims = latent_dims(workdir)
  if latent_dim is None:
    if len(dims) != 1:
      raise ValueError(f"{workdir} holds autoencoders of latent sizes {dims}; name one")
    latent_dim = dims[0]
  if latent_dim not in dims:
    raise FileNotFoundError(f"no autoencoder of latent size {latent_dim} in {workdir} "
                            f"(trained: {dims or 'none'})")
  path = os.path.abspath(autoencoder_dir(workdir, latent_dim))
  with open(os.path.join(path, "config.json")) as f:
    meta = json.load(f)
  config = AutoencoderConfig(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in meta["autoencoder"].items()})
  restored = _restore_here(os.path.join(path, "params"))
  space = PolicySpace(meta["observation_size"], meta["action_size"], meta["policy_hidden"])
  normalizer = Normalizer(**{k: jnp.asarray(v) for k, v in restored["normalizer"].items()})
  params = jax.tree.map(jnp.asarray, restored["params"])
  return CompressedSpace(meta["env_name"], space, Compressor(space, config, normalizer),
                         params, np.asarray(restored["codes"]))
