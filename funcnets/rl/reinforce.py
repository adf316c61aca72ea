"""REINFORCE with a baseline (Williams 1992): Monte-Carlo policy gradient, compiled end to end.

Each iteration plays one episode in each of ``num_envs`` environments (a
`lax.scan` of ``num_steps`` batched steps; steps after an episode's end are
masked out), computes the discounted returns ``G_t = sum_k gamma^k r_{t+k}``
to the end of each episode, and takes one gradient step on

    L(theta, phi) = - mean_t [ log pi_theta(a_t | s_t) A_t ]
                    + c_v mean_t [ (V_phi(s_t) - G_t)^2 ]
                    - c_H mean_t [ H(pi_theta(. | s_t)) ],
    A_t = G_t - b(s_t),

the means taken over the real steps of the batch's episodes. Its gradient
in ``theta`` is the policy-gradient estimator ``-E[grad log pi(a_t|s_t) (G_t
- b(s_t))]``, unbiased for any baseline ``b`` that does not depend on the
action (Sutton & Barto 2018, section 13.4). The baseline is a learned value
function ``V_phi`` (given ``value``), or else the batch's mean return at the
same time step. With ``normalize`` the advantages are scaled to mean 0 and
standard deviation 1 over the batch, which keeps the step size independent
of the scale of the returns.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from funcnets.layers.base import Layer
from funcnets.rl.agent import (
    Agent,
    Metrics,
    categorical_policy,
    init_networks,
    log_probs_and_entropy,
    masked_mean,
    rollout_key,
)
from funcnets.rl.environment import Environment
from funcnets.rl.returns import discounted_returns, masked_normalize
from funcnets.rl.rollout import Policy, first_episode_mask, reset_batch, rollout
from funcnets.train.state import TrainState, new_state
from funcnets.train.step import objective_step


def reinforce(
    env: Environment,
    policy: Layer,
    optimizer: Any,
    *,
    value: Layer | None = None,
    num_envs: int = 16,
    num_steps: int | None = None,
    gamma: float = 0.99,
    value_coef: float = 0.5,
    entropy_coef: float = 0.0,
    normalize: bool = True,
    env_params: Any = None,
) -> Agent:
    """A REINFORCE agent (policy gradient with a baseline) for ``env``, as an `Agent`.

    Args:
        env: an `Environment` with discrete actions.
        policy: a `Layer` from observations ``(batch, *obs_shape)`` to logits
            ``(batch, env.num_actions)``, e.g. ``fn.models.mlp([64, 64, 2])``.
        optimizer: any funcnets or optax optimizer, updating the policy's and
            the value function's params together (one loss).
        value: a `Layer` from observations to ``(batch, 1)``, the learned
            baseline ``V(s)``; ``None``: the batch's mean return at each time step.
        num_envs: episodes per iteration (one per environment).
        num_steps: the rollout length; every episode must end within it
            (default: the environment's ``max_steps``, 500 for CartPole-v1).
        gamma: the discount factor.
        value_coef: ``c_v``, the weight of the value loss.
        entropy_coef: ``c_H``, the weight of the entropy bonus.
        normalize: standardise the advantages over the batch.
        env_params: the environment's params (default ``env.default_params``).

    Returns:
        An `Agent`. Its ``init(key)`` builds a `TrainState` with params (and
        layer state) ``{"policy": ..., "value": ...}`` (``"value"`` only with a
        value function); its ``step(ts)`` is one iteration, returning metrics
        ``return`` (mean episode return), ``env_steps`` (the real steps of the
        episodes), ``loss``, ``policy_loss``, ``value_loss``, ``entropy``,
        ``grad_norm``, ``finite``. Per-iteration keys come from ``fold_in(ts.key,
        ts.step)``, so the same key gives the same run.

    Example:
        >>> import jax, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> agent = fn.rl.reinforce(env, fn.models.mlp([16, 2]), fn.optim.adam(1e-2),
        ...                         value=fn.models.mlp([16, 1]), num_envs=4)
        >>> ts, metrics = jax.eval_shape(agent.step, agent.init(jax.random.key(0)))  # traced only
        >>> sorted(metrics)[:4], ts.step.shape
        (['entropy', 'env_steps', 'finite', 'grad_norm'], ())
    """
    params_env = env.default_params if env_params is None else env_params
    if num_steps is None:
        num_steps = int(params_env.max_steps)
    nets = {"policy": policy} if value is None else {"policy": policy, "value": value}
    input_shape = (num_envs, *env.observation_shape)

    def init(key: jax.Array) -> TrainState:
        run_key, *net_keys = jax.random.split(key, len(nets) + 1)
        params, state = init_networks(nets, net_keys, input_shape)
        return new_state(params, state, optimizer.init(params), run_key)

    def objective(params, state, batch, key):
        obs, action, returns, mask = batch
        flat_obs = obs.reshape(-1, *env.observation_shape)
        policy_key, value_key = jax.random.split(key)
        new_state = dict(state)
        logits, new_state["policy"] = policy.apply(
            params["policy"], state["policy"], flat_obs, key=policy_key, train=True
        )
        log_pi, entropy = log_probs_and_entropy(logits.reshape(*mask.shape, -1), action)
        if value is None:
            per_step = jnp.sum(returns * mask, axis=1, keepdims=True)
            baseline = per_step / jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)
            value_loss = jnp.zeros((), returns.dtype)
        else:
            v, new_state["value"] = value.apply(
                params["value"], state["value"], flat_obs, key=value_key, train=True
            )
            v = v.reshape(mask.shape)
            baseline = jax.lax.stop_gradient(v)
            value_loss = masked_mean(jnp.square(v - returns), mask)
        advantage = returns - baseline
        if normalize:
            advantage = masked_normalize(advantage, mask)
        policy_loss = -masked_mean(log_pi * advantage, mask)
        mean_entropy = masked_mean(entropy, mask)
        loss = policy_loss + value_coef * value_loss - entropy_coef * mean_entropy
        metrics = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": mean_entropy}
        return loss, (new_state, metrics)

    update = objective_step(objective, optimizer)

    def current_policy(ts: TrainState, greedy: bool = False) -> Policy:
        return categorical_policy(policy, ts.params["policy"], ts.state["policy"], greedy)

    def step(ts: TrainState) -> tuple[TrainState, Metrics]:
        reset_key, play_key = jax.random.split(rollout_key(ts))
        obs, env_state = reset_batch(env, reset_key, num_envs, params_env)
        _, traj = rollout(env, current_policy(ts), play_key, obs, env_state, num_steps, params_env)
        mask = first_episode_mask(traj.done)
        returns = discounted_returns(traj.reward, traj.done, gamma)
        ts, metrics = update(ts, (traj.obs, traj.action, returns, mask))
        episode_return = jnp.sum(traj.reward * mask, axis=0)
        return ts, {
            "return": jnp.mean(episode_return),
            "env_steps": jnp.sum(mask, dtype=jnp.int32),
            **metrics,
        }

    return Agent(init, step, current_policy)
