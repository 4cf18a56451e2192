"""Steps every task of every family for one episode of random actions; prints rewards.

  python -m experiments.demo_envs [--envs=halfcheetah_vel,hopper_vel] [--seed=0]
"""
from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from earjax import envs
from earjax.compilation_cache import enable_compilation_cache

_ENVS = flags.DEFINE_list("envs", list(envs.jax_names()), "Families to step.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of resets and actions.")


def random_episode(env, key):
  """Per-task mean reward and velocity over one 200-step random-action episode."""
  batch = envs.AutoResetBatch(env)
  tasks = jnp.asarray(env.train_tasks)
  reset_key, key = jax.random.split(key)
  state = batch.reset(jax.random.split(reset_key, len(tasks)), tasks)

  def body(state, key):
    actions = jax.random.uniform(key, (len(tasks), env.action_size), minval=-1, maxval=1)
    state = batch.step(state, actions)
    return state, (state.reward, state.metrics["velocity"])

  _, (rewards, velocities) = jax.lax.scan(
      body, state, jax.random.split(key, env.episode_length))
  return rewards.mean(0), velocities.mean(0)


def main(argv):
  del argv
  enable_compilation_cache()
  key = jax.random.PRNGKey(_SEED.value)
  for name in _ENVS.value:
    env = envs.make(name)
    rewards, velocities = jax.jit(random_episode, static_argnums=0)(env, key)
    print(f"\n{name}: {env.num_tasks} tasks in one batch, obs {env.observation_size}, "
          f"act {env.action_size}, dt {env.dt:g}s")
    print(f"  {'task':<14}{'mean reward':>12}{'mean velocity':>15}")
    for task, r, v in zip(env.task_names, np.asarray(rewards), np.asarray(velocities)):
      print(f"  {task:<14}{r:>12.3f}{v:>15.3f}")


if __name__ == "__main__":
  app.run(main)
