"""Training: the generic jitted epoch (``trainer``) and the job around it (``job``)."""
from earjax.training.job import (NonFiniteError, describe_nonfinite, load_config,
                                 prepare_workdir, train_and_evaluate)
from earjax.training.trainer import (ConfigError, HOST_ONLY_KEYS, Trainer, TrainingState,
                                     trainer_for)

__all__ = ["ConfigError", "HOST_ONLY_KEYS", "NonFiniteError", "Trainer", "TrainingState",
           "describe_nonfinite", "load_config", "prepare_workdir", "train_and_evaluate",
           "trainer_for"]
