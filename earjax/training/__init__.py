"""Training: the two kinds of epoch (``epochs``), the Trainer that compiles them for a
``Run`` (``trainer``) and the job around it (``job``)."""
from earjax.config import ConfigError
from earjax.run import load_config
from earjax.training.job import (NonFiniteError, describe_nonfinite, prepare_workdir,
                                 train_and_evaluate)
from earjax.training.trainer import HOST_ONLY_KEYS, Trainer, TrainingState, trainer_for

__all__ = ["ConfigError", "HOST_ONLY_KEYS", "NonFiniteError", "Trainer", "TrainingState",
           "describe_nonfinite", "load_config", "prepare_workdir", "train_and_evaluate",
           "trainer_for"]
