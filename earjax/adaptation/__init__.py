"""After training: the LTE space as an interface to behaviour, and the adaptation baselines.

- ``lte``: Eq. 1 interpolation/composition, rollouts of the frozen policy with given LTEs.
- ``cem``: CEM over LTEs (Algorithm 2) and ``table_es``, every generation of every task
  in one ``lax.scan``.
- ``finetune``: the OHE-SAC fine-tuning baseline on the generic trainer.
"""
