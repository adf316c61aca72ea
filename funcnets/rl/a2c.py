"""Advantage actor-critic, A2C (Mnih et al. 2016, synchronous): n-step returns, compiled.

Unlike REINFORCE, A2C does not wait for episodes to end: its ``num_envs``
environments run on between iterations (their states live in ``ts.state``),
each iteration steps them ``num_steps`` times and updates once on

    L(theta, phi) = - mean_t [ log pi_theta(a_t | s_t) A_t ]
                    + c_v mean_t [ (V_phi(s_t) - R_t)^2 ]
                    - c_H mean_t [ H(pi_theta(. | s_t)) ],

with generalised advantages (Schulman et al. 2016)
``A_t = sum_k (gamma lambda)^k delta_{t+k}`` within the episode, ``delta_t =
r_t + gamma V(s_{t+1}) - V(s_t)``; ``lambda = 1`` gives the n-step return
``G_t - V(s_t)`` bootstrapped with ``V`` after the last step. The value
targets ``R_t = A_t + V(s_t)`` are held fixed (no gradient through them).
When an episode is truncated by its time limit, ``V(s_{t+1})`` is the value
of its final observation (it would have gone on); when it terminates, 0.
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
    rollout_key,
)
from funcnets.rl.environment import Environment
from funcnets.rl.returns import discounted_returns, masked_normalize
from funcnets.rl.rollout import Policy, reset_batch, rollout
from funcnets.train.state import TrainState, new_state
from funcnets.train.step import objective_step


def a2c(
    env: Environment,
    policy: Layer,
    value: Layer,
    optimizer: Any,
    *,
    num_envs: int = 16,
    num_steps: int = 32,
    gamma: float = 0.99,
    gae_lambda: float = 1.0,
    value_coef: float = 0.5,
    entropy_coef: float = 0.01,
    normalize: bool = False,
    env_params: Any = None,
) -> Agent:
    """An A2C agent for ``env``: ``num_envs`` environments, ``num_steps`` steps per update.

    Args:
        env: an `Environment` with discrete actions.
        policy: a `Layer` from observations ``(batch, *obs_shape)`` to logits
            ``(batch, env.num_actions)``.
        value: a `Layer` from observations to ``(batch, 1)``, the critic ``V(s)``.
        optimizer: any funcnets or optax optimizer (one loss, both networks).
        num_envs: environments stepped side by side.
        num_steps: steps per environment per iteration (the n of n-step returns).
        gamma: the discount factor.
        gae_lambda: lambda of the generalised advantage (1: n-step returns).
        value_coef: ``c_v``, the weight of the value loss.
        entropy_coef: ``c_H``, the weight of the entropy bonus.
        normalize: standardise the advantages over the batch.
        env_params: the environment's params (default ``env.default_params``).

    Returns:
        An `Agent` whose `TrainState` holds params ``{"policy", "value"}`` and
        state ``{"policy", "value", "env", "episode_return", "last_return"}``:
        the networks' layer state, the environments' ``(obs, env_state)``, the
        return so far of each running episode and of each environment's last
        finished one. ``step`` reports ``return`` (the mean of the last finished
        episodes' returns, 0 before any ended), ``env_steps`` (``num_envs *
        num_steps``), ``loss``, ``policy_loss``, ``value_loss``, ``entropy``,
        ``grad_norm``, ``finite``.

    Example (`jax.eval_shape` traces a step without compiling it; the tests run it):
        >>> import jax, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> agent = fn.rl.a2c(env, fn.models.mlp([16, 2]), fn.models.mlp([16, 1]),
        ...                   fn.optim.adam(1e-3), num_envs=4, num_steps=8)
        >>> ts = jax.eval_shape(agent.init, jax.random.key(0))
        >>> ts, metrics = jax.eval_shape(agent.step, ts)
        >>> ts.state["env"][0].shape, sorted(metrics)[:4]
        ((4, 4), ['entropy', 'env_steps', 'finite', 'grad_norm'])
    """
    params_env = env.default_params if env_params is None else env_params
    input_shape = (num_envs, *env.observation_shape)
    nets = {"policy": policy, "value": value}

    def init(key: jax.Array) -> TrainState:
        run_key, env_key, *net_keys = jax.random.split(key, 4)
        params, state = init_networks(nets, net_keys, input_shape)
        state["env"] = reset_batch(env, env_key, num_envs, params_env)
        state["episode_return"] = jnp.zeros(num_envs, jnp.float32)
        state["last_return"] = jnp.zeros(num_envs, jnp.float32)
        return new_state(params, state, optimizer.init(params), run_key)

    def values(params, state, obs, key, train=False):
        v, new_state = value.apply(
            params, state, obs.reshape(-1, *env.observation_shape), key=key, train=train
        )
        return v.reshape(obs.shape[: -len(env.observation_shape)]), new_state

    def objective(params, state, batch, key):
        traj, last_obs = batch
        policy_key, value_key = jax.random.split(key)
        new_state = dict(state)
        logits, new_state["policy"] = policy.apply(
            params["policy"],
            state["policy"],
            traj.obs.reshape(-1, *env.observation_shape),
            key=policy_key,
            train=True,
        )
        log_pi, entropy = log_probs_and_entropy(logits.reshape(*traj.action.shape, -1), traj.action)
        v, new_state["value"] = values(params["value"], state["value"], traj.obs, value_key, True)

        # The targets: values of the next states, held fixed (no gradient through them).
        frozen = jax.lax.stop_gradient(params["value"])
        v_last, _ = values(frozen, state["value"], last_obs, None)
        v_final, _ = values(frozen, state["value"], traj.info["final_observation"], None)
        v_next = jnp.concatenate([jax.lax.stop_gradient(v[1:]), v_last[None]])
        truncated_only = traj.info["truncated"] & ~traj.info["terminated"]
        v_next = jnp.where(traj.done, jnp.where(truncated_only, v_final, 0.0), v_next)
        delta = traj.reward + gamma * v_next - jax.lax.stop_gradient(v)
        advantage = discounted_returns(delta, traj.done, gamma * gae_lambda)
        target = advantage + jax.lax.stop_gradient(v)
        if normalize:
            advantage = masked_normalize(advantage, jnp.ones_like(traj.done))
        policy_loss = -jnp.mean(log_pi * advantage)
        value_loss = jnp.mean(jnp.square(v - target))
        mean_entropy = jnp.mean(entropy)
        loss = policy_loss + value_coef * value_loss - entropy_coef * mean_entropy
        metrics = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": mean_entropy}
        return loss, (new_state, metrics)

    update = objective_step(objective, optimizer)

    def current_policy(ts: TrainState, greedy: bool = False) -> Policy:
        return categorical_policy(policy, ts.params["policy"], ts.state["policy"], greedy)

    def step(ts: TrainState) -> tuple[TrainState, Metrics]:
        obs, env_state = ts.state["env"]
        (obs, env_state), traj = rollout(
            env, current_policy(ts), rollout_key(ts), obs, env_state, num_steps, params_env
        )
        episode_return, last_return = jax.lax.scan(
            _track_returns,
            (ts.state["episode_return"], ts.state["last_return"]),
            (traj.reward, traj.done),
        )[0]
        state = {
            **ts.state,
            "env": (obs, env_state),
            "episode_return": episode_return,
            "last_return": last_return,
        }
        ts, metrics = update(ts._replace(state=state), (traj, obs))
        return ts, {
            "return": jnp.mean(last_return),
            "env_steps": jnp.asarray(num_envs * num_steps, jnp.int32),
            **metrics,
        }

    return Agent(init, step, current_policy)


def _track_returns(carry, step):
    """Adds a step's rewards to the running returns; an ended episode's becomes the last one."""
    (running, last), (reward, done) = carry, step
    running = running + reward
    return (jnp.where(done, 0.0, running), jnp.where(done, running, last)), None
