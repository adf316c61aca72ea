"""Reinforcement learning in pure JAX: environments as functions, agents as compiled scans.

- `Environment`: ``reset(key, params) -> (obs, env_state)`` and the
  auto-resetting ``step(key, env_state, action, params) -> (obs, env_state,
  reward, done, info)``, pure and batched with `jax.vmap`; `CartPole`
  reproduces Gymnasium's ``CartPole-v1`` (`CartPoleParams`, `CartPoleState`,
  module `cartpole`).
- `rollout`, `reset_batch`, `step_batch`, `evaluate`, `random_policy`,
  `first_episode_mask`: many environments stepped together in one `lax.scan`.
- `discounted_returns`, `masked_normalize`: returns and advantages.
- Agents: `reinforce` (REINFORCE with a baseline) and `a2c`, each an
  `Agent(init, step, policy)` over a `fn.train.TrainState`; `train` scans
  ``step``, and ``jax.vmap(train)`` trains one agent per seed in one call.
- `train_and_evaluate`: seeds trained side by side, then evaluated;
  `plot_returns`; `cli_main`, the ``funcnets rl cartpole`` command.

Example:
    >>> import jax, funcnets as fn
    >>> env = fn.rl.CartPole()
    >>> obs, env_state = env.reset(jax.random.key(0), env.default_params)
    >>> obs, env_state, reward, done, info = env.step(
    ...     jax.random.key(1), env_state, 1, env.default_params)
    >>> obs.shape, float(reward), bool(done)
    ((4,), 1.0, False)
"""

from funcnets.rl import cartpole
from funcnets.rl.a2c import a2c
from funcnets.rl.agent import Agent, categorical_policy, train
from funcnets.rl.cartpole import CartPole, CartPoleParams, CartPoleState
from funcnets.rl.cli import (
    add_cartpole_arguments,
    cartpole_agent,
    cli_main,
    run_cartpole_command,
)
from funcnets.rl.environment import Environment, auto_reset
from funcnets.rl.plot import curves_on_common_steps, plot_returns
from funcnets.rl.reinforce import reinforce
from funcnets.rl.returns import discounted_returns, masked_normalize
from funcnets.rl.rollout import (
    Trajectory,
    evaluate,
    first_episode_mask,
    random_policy,
    reset_batch,
    rollout,
    step_batch,
)
from funcnets.rl.runs import seed_keys, train_and_evaluate

__all__ = [
    "Agent",
    "CartPole",
    "CartPoleParams",
    "CartPoleState",
    "Environment",
    "Trajectory",
    "a2c",
    "add_cartpole_arguments",
    "auto_reset",
    "cartpole",
    "cartpole_agent",
    "categorical_policy",
    "cli_main",
    "curves_on_common_steps",
    "discounted_returns",
    "evaluate",
    "first_episode_mask",
    "masked_normalize",
    "plot_returns",
    "random_policy",
    "reinforce",
    "reset_batch",
    "rollout",
    "run_cartpole_command",
    "seed_keys",
    "step_batch",
    "train_and_evaluate",
    "train",
]
