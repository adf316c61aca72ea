"""`fn.rl.CartPole` is Gymnasium's CartPole-v1: same dynamics, termination, truncation and resets;
its functions are pure, jittable and vmappable, and its constants change without recompiling."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn
from funcnets.rl import cartpole

ENV = fn.rl.CartPole()
PARAMS = ENV.default_params
TRANSITION = jax.jit(cartpole.transition)
STEP = jax.jit(ENV.step)
BATCH_STEP = jax.jit(jax.vmap(ENV.step, in_axes=(0, 0, 0, None)))


@pytest.fixture(scope="module")
def gym():
    """Gymnasium, the reference: a test extra (``pip install -e '.[test]'``), never a dependency."""
    return pytest.importorskip(
        "gymnasium", reason="Gymnasium is not installed: pip install -e '.[test]' installs it"
    )


def controller(target: float):
    """Balances the pole while steering the cart towards x = ``target`` (beyond 2.4: it leaves)."""

    def act(obs, rng):
        x, x_dot, theta, theta_dot = obs
        return int(theta + 0.5 * theta_dot + 0.05 * (x - target) + 0.1 * x_dot > 0)

    return act


def random_actions(obs, rng):
    return int(rng.integers(2))


def test_constants_are_gymnasiums(gym):
    reference = gym.make("CartPole-v1")
    raw = reference.unwrapped
    assert (PARAMS.gravity, PARAMS.masscart, PARAMS.masspole) == (
        raw.gravity,
        raw.masscart,
        raw.masspole,
    )
    assert (PARAMS.length, PARAMS.force_mag, PARAMS.tau) == (raw.length, raw.force_mag, raw.tau)
    assert raw.kinematics_integrator == "euler" and not raw._sutton_barto_reward
    assert PARAMS.theta_threshold == raw.theta_threshold_radians == 12 * 2 * math.pi / 360
    assert PARAMS.x_threshold == raw.x_threshold == 2.4
    assert PARAMS.max_steps == reference.spec.max_episode_steps == 500
    assert reference.spec.reward_threshold == 475.0
    assert ENV.observation_shape == reference.observation_space.shape
    assert ENV.num_actions == reference.action_space.n


def test_1000_steps_agree_with_gymnasium_step_by_step(gym):
    """Episodes ending every way (pole falls, cart leaves on either side, the 500-step limit).

    Before each step Gymnasium's state is set to ours (float32, as Gymnasium
    computes in float64): the next observations agree to float32 rounding, and
    rewards, terminations and truncations exactly.
    """
    reference = gym.make("CartPole-v1")  # with its TimeLimit(500) wrapper
    policies = [controller(3.0), random_actions, controller(-3.0), random_actions]
    policies += [controller(0.0)] + [random_actions] * 100
    rng = np.random.default_rng(0)
    ends, episode, t = [], 0, 0
    obs_gym, _ = reference.reset(seed=0)
    state = cartpole.from_observation(obs_gym)
    worst = 0.0
    for _ in range(1000):
        obs = np.asarray(cartpole.observation(state))
        action = policies[episode](obs, rng)
        reference.unwrapped.state = obs.astype(np.float64)
        obs_gym, reward_gym, terminated_gym, truncated_gym, _ = reference.step(action)
        obs_ours, state, reward, done, info = TRANSITION(None, state, action, PARAMS)
        t += 1
        # Float32 rounding: a few units in the last place of the values involved (~1e-7).
        np.testing.assert_allclose(np.asarray(obs_ours), obs_gym, rtol=1e-6, atol=2e-7)
        worst = max(worst, float(np.max(np.abs(np.asarray(obs_ours) - obs_gym))))
        assert float(reward) == reward_gym == 1.0  # the terminating step is rewarded too
        assert bool(info["terminated"]) == terminated_gym
        assert bool(info["truncated"]) == truncated_gym
        assert bool(done) == (terminated_gym or truncated_gym)
        assert int(state.time) == t
        if done:
            ends.append((t, terminated_gym, truncated_gym, obs_gym))
            episode, t = episode + 1, 0
            obs_gym, _ = reference.reset(seed=episode)
            state = cartpole.from_observation(obs_gym)
    assert worst <= 2.4e-7
    # Every way an episode ends happened, and the limit cuts an episode at exactly 500 steps.
    x_out = [abs(o[0]) > 2.4 for _, term, _, o in ends if term]
    theta_out = [abs(o[2]) > PARAMS.theta_threshold for _, term, _, o in ends if term]
    assert any(o[0] > 2.4 for *_, o in ends) and any(o[0] < -2.4 for *_, o in ends)
    assert sum(theta_out) >= 5 and sum(x_out) >= 2
    assert [(n, term) for n, term, trunc, _ in ends if trunc] == [(500, False)]
    assert len(ends) >= 10


def test_termination_and_truncation_on_the_same_step_as_gymnasium(gym):
    """The cart leaves the track at step 141 under this controller: with a limit of 141 steps,
    Gymnasium reports both, and so do we."""
    act, steps = controller(3.0), 141
    reference = gym.make("CartPole-v1", max_episode_steps=steps)
    obs_gym, _ = reference.reset(seed=1)
    state = cartpole.from_observation(obs_gym)
    params = PARAMS._replace(max_steps=steps)
    t = 0
    while t < steps:
        t += 1
        action = act(np.asarray(cartpole.observation(state)), None)
        reference.unwrapped.state = np.asarray(cartpole.observation(state), np.float64)
        _, _, terminated_gym, truncated_gym, _ = reference.step(action)
        _, state, reward, done, info = TRANSITION(None, state, action, params)
        assert (bool(info["terminated"]), bool(info["truncated"])) == (
            terminated_gym,
            truncated_gym,
        )
        if done:
            break
    assert t == steps and terminated_gym and truncated_gym


def test_initial_states_are_uniform_in_the_same_box(gym):
    keys = jax.random.split(jax.random.key(0), 20_000)
    obs, state = jax.vmap(ENV.reset, in_axes=(0, None))(keys, PARAMS)
    obs = np.asarray(obs)
    assert obs.dtype == np.float32 and obs.shape == (20_000, 4)
    assert obs.min() >= -0.05 and obs.max() <= 0.05
    np.testing.assert_allclose(obs.mean(0), 0.0, atol=0.002)
    np.testing.assert_allclose(obs.std(0), 0.1 / math.sqrt(12), rtol=0.02)  # uniform's std
    assert np.all(np.asarray(state.time) == 0)
    # Gymnasium's draws lie in the same box: its reset bounds are (-0.05, 0.05) too.
    reference = gym.make("CartPole-v1")
    draws = np.array([reference.reset(seed=s)[0] for s in range(200)])
    assert draws.min() >= -0.05 and draws.max() <= 0.05


def test_step_is_pure_and_jit_equals_eager():
    obs, state = ENV.reset(jax.random.key(3), PARAMS)
    before = jax.tree.map(np.asarray, state)
    eager = ENV.step(jax.random.key(4), state, 1, PARAMS)
    jitted = STEP(jax.random.key(4), state, 1, PARAMS)
    again = STEP(jax.random.key(4), state, 1, PARAMS)
    for a, b, c in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(b, c)
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state)):
        np.testing.assert_array_equal(a, b)  # the arguments are untouched


def test_vmap_equals_one_environment_at_a_time():
    keys = jax.random.split(jax.random.key(5), 8)
    obs, states = jax.vmap(ENV.reset, in_axes=(0, None))(keys, PARAMS)
    actions = jnp.arange(8) % 2
    batched = jax.device_get(BATCH_STEP(keys, states, actions, PARAMS))
    states, actions = jax.device_get((states, actions))
    for i in range(8):
        state = cartpole.CartPoleState(*(leaf[i] for leaf in states))
        one = STEP(keys[i], state, int(actions[i]), PARAMS)
        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(batched)):
            np.testing.assert_array_equal(a, b[i])


def test_auto_reset_starts_a_new_episode_and_reports_the_final_observation():
    # A pole about to fall: one push the wrong way ends the episode.
    state = cartpole.from_observation(jnp.array([0.0, 0.0, 0.2094, 2.0]), time=7)
    final_obs, final_state, *_ = TRANSITION(None, state, 0, PARAMS)
    obs, new_state, reward, done, info = STEP(jax.random.key(6), state, 0, PARAMS)
    assert bool(done) and bool(info["terminated"]) and not bool(info["truncated"])
    assert float(reward) == 1.0
    np.testing.assert_array_equal(info["final_observation"], final_obs)
    assert float(np.abs(obs).max()) <= 0.05 and int(new_state.time) == 0
    np.testing.assert_array_equal(obs, cartpole.observation(new_state))
    # The new episode is the reset drawn from the step's key.
    reset_obs, _ = ENV.reset(jax.random.key(6), PARAMS)
    np.testing.assert_array_equal(obs, reset_obs)
    # An episode that goes on keeps its state and returns the same observation twice.
    obs, kept, _, done, info = STEP(jax.random.key(6), cartpole.from_observation(obs), 1, PARAMS)
    assert not bool(done) and int(kept.time) == 1
    np.testing.assert_array_equal(obs, info["final_observation"])


def test_generic_auto_reset_splits_the_key_for_a_random_transition():
    def noisy_transition(key, state, action, params):
        obs, state, reward, done, info = cartpole.transition(key, state, action, params)
        return obs, state, reward + jax.random.uniform(key), done, info

    step = fn.rl.auto_reset(cartpole.reset, noisy_transition)
    obs, state = ENV.reset(jax.random.key(0), PARAMS)
    _, _, reward, _, _ = jax.jit(step)(jax.random.key(1), state, 1, PARAMS)
    transition_key, _ = jax.random.split(jax.random.key(1))
    assert float(reward) == pytest.approx(1.0 + float(jax.random.uniform(transition_key)))


def test_params_change_without_recompiling():
    traces = []

    @jax.jit
    def step(state, params):
        traces.append(1)
        return cartpole.transition(None, state, 1, params)

    _, state = ENV.reset(jax.random.key(0), PARAMS)
    as_arrays = jax.tree.map(jnp.asarray, PARAMS)
    earth = step(state, as_arrays)[1]
    moon = step(state, as_arrays._replace(gravity=jnp.asarray(1.62)))[1]
    assert len(traces) == 1
    assert float(earth.theta_dot) != float(moon.theta_dot)
    np.testing.assert_allclose(  # same as the defaults given as Python floats
        cartpole.observation(earth),
        cartpole.observation(TRANSITION(None, state, 1, PARAMS)[1]),
        rtol=1e-7,
    )
