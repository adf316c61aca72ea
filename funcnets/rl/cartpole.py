"""CartPole-v1 as pure functions, step for step Gymnasium's (Barto, Sutton & Anderson 1983).

A pole is hinged on a cart that moves along a frictionless track; each step
pushes the cart left (action 0) or right (action 1) with a force of 10 N.
Reward 1 per step, the terminating step included; the episode terminates
when the cart leaves ``|x| <= 2.4`` or the pole leaves ``|theta| <= 12``
degrees, and is truncated after 500 steps (Gymnasium's ``TimeLimit``).

The dynamics are Gymnasium's ``CartPoleEnv.step`` (Florian 2007, "Correct
equations for the dynamics of the cart-pole system"), integrated by explicit
Euler with ``tau = 0.02`` s, here in float32::

    temp      = (F + m_p l theta_dot^2 sin(theta)) / (m_c + m_p)
    theta_acc = (g sin(theta) - cos(theta) temp) / (l (4/3 - m_p cos^2(theta) / (m_c + m_p)))
    x_acc     = temp - m_p l theta_acc cos(theta) / (m_c + m_p)
    x += tau x_dot;  x_dot += tau x_acc;  theta += tau theta_dot;  theta_dot += tau theta_acc

with ``l`` the pole's half-length. A new episode starts from a state drawn
uniformly from ``[-0.05, 0.05]^4``. Gymnasium computes in float64 and returns
a float32 observation; from the same float32 state and action the two agree
to float32 rounding (tests/rl/test_cartpole.py checks 1,000 steps).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from funcnets.rl.environment import Environment, auto_reset


class CartPoleParams(NamedTuple):
    """CartPole's constants (Gymnasium's values); floats or arrays, changeable without recompiling.

    Attributes:
        gravity: g, m/s^2.
        masscart: m_c, kg.
        masspole: m_p, kg.
        length: l, half the pole's length, m.
        force_mag: the magnitude of the push, N.
        tau: the time step, s.
        theta_threshold: the pole angle beyond which the episode terminates,
            radians (12 degrees).
        x_threshold: the cart position beyond which the episode terminates, m.
        max_steps: the time limit: the episode is truncated at this step.
        reset_bound: initial states are uniform in ``[-reset_bound, reset_bound]^4``.
    """

    gravity: float | jax.Array = 9.8
    masscart: float | jax.Array = 1.0
    masspole: float | jax.Array = 0.1
    length: float | jax.Array = 0.5
    force_mag: float | jax.Array = 10.0
    tau: float | jax.Array = 0.02
    theta_threshold: float | jax.Array = 12 * 2 * math.pi / 360
    x_threshold: float | jax.Array = 2.4
    max_steps: int | jax.Array = 500
    reset_bound: float | jax.Array = 0.05


class CartPoleState(NamedTuple):
    """The state of one cart-pole: float32 scalars (batched: one axis more) and the step count.

    Attributes:
        x: cart position, m.
        x_dot: cart velocity, m/s.
        theta: pole angle from upright, radians (positive: leaning right).
        theta_dot: pole angular velocity, rad/s.
        time: int32, steps taken in this episode.
    """

    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array
    theta_dot: jax.Array
    time: jax.Array


def observation(state: CartPoleState) -> jax.Array:
    """The observation ``[x, x_dot, theta, theta_dot]``, float32, shape ``(..., 4)``."""
    return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot], axis=-1)


def from_observation(obs: jax.Array, time: int | jax.Array = 0) -> CartPoleState:
    """The state whose observation is ``obs`` (shape ``(..., 4)``), ``time`` steps into its episode.

    Example:
        >>> import jax.numpy as jnp, funcnets as fn
        >>> s = fn.rl.cartpole.from_observation(jnp.array([0.0, 0.1, 0.02, -0.1]))
        >>> float(s.theta), int(s.time)
        (0.019999999552965164, 0)
    """
    obs = jnp.asarray(obs, jnp.float32)
    time = jnp.broadcast_to(jnp.asarray(time, jnp.int32), obs.shape[:-1])
    return CartPoleState(obs[..., 0], obs[..., 1], obs[..., 2], obs[..., 3], time)


def reset(key: jax.Array, params: CartPoleParams) -> tuple[jax.Array, CartPoleState]:
    """A new episode: every state variable uniform in ``[-reset_bound, reset_bound]``.

    Returns ``(obs, state)``: ``obs`` float32 ``(4,)``. Batch it with
    ``jax.vmap(reset, in_axes=(0, None))`` over a batch of keys.

    Example:
        >>> import jax, funcnets as fn
        >>> obs, state = fn.rl.cartpole.reset(jax.random.key(0), fn.rl.CartPoleParams())
        >>> obs.shape, obs.dtype, bool(abs(obs).max() <= 0.05), int(state.time)
        ((4,), dtype('float32'), True, 0)
    """
    bound = jnp.asarray(params.reset_bound, jnp.float32)
    values = jax.random.uniform(key, (4,), jnp.float32, -bound, bound)
    state = from_observation(values)
    return observation(state), state


def transition(
    key: jax.Array | None, state: CartPoleState, action: jax.Array | int, params: CartPoleParams
) -> tuple[jax.Array, CartPoleState, jax.Array, jax.Array, dict[str, jax.Array]]:
    """One step of Gymnasium's ``CartPole-v1`` (``CartPoleEnv.step`` in its ``TimeLimit``).

    No reset: after ``done`` the returned state is the final one. ``key`` is
    unused (the dynamics are deterministic) and kept for the step protocol.

    Args:
        key: unused.
        state: a `CartPoleState` of scalars.
        action: int, 0 (push left) or 1 (push right).
        params: `CartPoleParams`.

    Returns:
        ``(obs, state, reward, done, info)``: ``obs`` float32 ``(4,)``;
        ``reward`` float32, 1.0 on every step including the terminating one
        (``sutton_barto_reward=False``); ``done = terminated | truncated``;
        ``info = {"terminated", "truncated"}``, bools, as Gymnasium's
        ``step`` returns them: terminated when ``|x| > x_threshold`` or
        ``|theta| > theta_threshold`` after the step, truncated when this
        step is the ``max_steps``-th (both can be True). Stepping on after
        termination is undefined in Gymnasium (it warns and returns reward
        0); the auto-resetting `CartPole` step never does it.

    Example:
        >>> import jax, funcnets as fn
        >>> p = fn.rl.CartPoleParams()
        >>> obs, s = fn.rl.cartpole.reset(jax.random.key(0), p)
        >>> obs, s, reward, done, info = fn.rl.cartpole.transition(None, s, 1, p)
        >>> float(reward), bool(done), int(s.time)
        (1.0, False, 1)
    """
    del key
    f32 = lambda value: jnp.asarray(value, jnp.float32)
    gravity, masscart, masspole, length = map(
        f32, (params.gravity, params.masscart, params.masspole, params.length)
    )
    force_mag, tau = f32(params.force_mag), f32(params.tau)
    total_mass = masspole + masscart
    polemass_length = masspole * length

    x, x_dot, theta, theta_dot = state.x, state.x_dot, state.theta, state.theta_dot
    force = jnp.where(jnp.asarray(action) == 1, force_mag, -force_mag)
    costheta, sintheta = jnp.cos(theta), jnp.sin(theta)
    temp = (force + polemass_length * jnp.square(theta_dot) * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (f32(4.0 / 3.0) - masspole * jnp.square(costheta) / total_mass)
    )
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    new = CartPoleState(
        x=x + tau * x_dot,
        x_dot=x_dot + tau * xacc,
        theta=theta + tau * theta_dot,
        theta_dot=theta_dot + tau * thetaacc,
        time=state.time + 1,
    )
    x_threshold, theta_threshold = f32(params.x_threshold), f32(params.theta_threshold)
    terminated = (
        (new.x < -x_threshold)
        | (new.x > x_threshold)
        | (new.theta < -theta_threshold)
        | (new.theta > theta_threshold)
    )
    truncated = new.time >= params.max_steps
    reward = jnp.ones((), jnp.float32)
    info = {"terminated": terminated, "truncated": truncated}
    return observation(new), new, reward, terminated | truncated, info


def CartPole() -> Environment:
    """Gymnasium's ``CartPole-v1`` as an `Environment`: pure ``reset`` and auto-resetting ``step``.

    Observation float32 ``(4,)`` = ``[x, x_dot, theta, theta_dot]``; actions
    0 (push left) and 1 (push right); reward 1 per step; the episode ends on
    termination (``|x| > 2.4``, ``|theta| > 12`` degrees) or truncation at
    500 steps, and ``step`` then starts the next one, drawn from its key
    (the dynamics are deterministic: the key serves the reset only). Solved (Gymnasium's
    ``reward_threshold``) at a mean return of 475 over 100 episodes.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> env = fn.rl.CartPole()
        >>> keys = jax.random.split(jax.random.key(0), 1024)
        >>> reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
        >>> step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
        >>> obs, states = reset(keys, env.default_params)
        >>> actions = jnp.ones(1024, jnp.int32)
        >>> obs, states, reward, done, info = step(keys, states, actions, env.default_params)
        >>> obs.shape, reward.shape, done.dtype
        ((1024, 4), (1024,), dtype('bool'))
    """
    return Environment(
        reset=reset,
        step=auto_reset(reset, transition, deterministic=True),
        transition=transition,
        default_params=CartPoleParams(),
        observation_shape=(4,),
        num_actions=2,
        name="CartPole-v1",
        deterministic=True,
    )
