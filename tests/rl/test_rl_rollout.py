"""Rollouts, returns and evaluation: checked against plain Python loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funcnets as fn

ENV = fn.rl.CartPole()


def returns_by_loop(reward, done, gamma, bootstrap, final_value):
    reward, done = np.asarray(reward, np.float64), np.asarray(done)
    out, following = np.zeros_like(reward), np.asarray(bootstrap, np.float64)
    for t in reversed(range(len(reward))):
        following = np.where(
            done[t], reward[t] + gamma * final_value[t], reward[t] + gamma * following
        )
        out[t] = following
    return out


def test_discounted_returns_equal_the_sum_within_each_episode():
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(30, 5)).astype(np.float32)
    done = rng.random((30, 5)) < 0.15
    bootstrap = rng.normal(size=5).astype(np.float32)
    final_value = rng.normal(size=(30, 5)).astype(np.float32)
    got = fn.rl.discounted_returns(reward, done, 0.9, bootstrap, final_value)
    np.testing.assert_allclose(
        got, returns_by_loop(reward, done, 0.9, bootstrap, final_value), rtol=1e-5, atol=1e-5
    )
    # G_t = sum_k gamma^k r_{t+k} for an episode that ends at its last step.
    g = fn.rl.discounted_returns(jnp.ones((4, 1)), jnp.array([[0], [0], [0], [1]], bool), 0.5)
    np.testing.assert_allclose(g[:, 0], [1.875, 1.75, 1.5, 1.0])


def test_first_episode_mask_and_masked_normalize():
    done = jnp.array([[0, 1], [1, 0], [0, 1], [1, 0]], bool)
    mask = fn.rl.first_episode_mask(done)
    np.testing.assert_array_equal(mask, [[1, 1], [1, 0], [0, 0], [0, 0]])
    x = jnp.arange(8.0).reshape(4, 2)
    z = fn.rl.masked_normalize(x, mask)
    kept = np.asarray(z)[np.asarray(mask)]
    np.testing.assert_allclose([kept.mean(), kept.std()], [0.0, 1.0], atol=1e-6)
    assert float(jnp.abs(z[~mask]).max()) == 0.0


def test_rollout_continues_where_it_stopped_and_resets_ended_episodes():
    obs, states = fn.rl.reset_batch(ENV, jax.random.key(0), 6)
    policy = fn.rl.random_policy(ENV.num_actions)
    run = jax.jit(lambda key, obs, states: fn.rl.rollout(ENV, policy, key, obs, states, 60))
    (obs1, states1), traj = run(jax.random.key(1), obs, states)
    assert traj.obs.shape == (60, 6, 4) and traj.action.dtype == jnp.int32
    np.testing.assert_array_equal(traj.obs[0], obs)
    # Each observation is the one the previous step returned (after any reset).
    after = np.where(
        np.asarray(traj.done)[:-1, :, None], 0.0, np.asarray(traj.info["final_observation"])[:-1]
    )
    before = np.where(np.asarray(traj.done)[:-1, :, None], 0.0, np.asarray(traj.obs)[1:])
    np.testing.assert_array_equal(after, before)
    ended = np.asarray(traj.done)
    assert ended.any() and np.all(np.abs(np.asarray(traj.obs)[1:][ended[:-1]]) <= 0.05)
    # The step counter in the final states counts the steps since each copy's last reset.
    last_start = np.array([max([t + 1 for t in range(60) if ended[t, i]] or [0]) for i in range(6)])
    np.testing.assert_array_equal(states1.time, 60 - last_start)
    np.testing.assert_array_equal(obs1, np.asarray(fn.rl.cartpole.observation(states1)))


def test_evaluate_returns_episode_lengths_of_a_random_policy():
    returns = jax.jit(lambda key: fn.rl.evaluate(ENV, fn.rl.random_policy(2), key, 500))(
        jax.random.key(0)
    )
    returns = np.asarray(returns)
    assert returns.shape == (500,) and np.all(returns == np.round(returns)) and returns.min() >= 8
    assert 19 < returns.mean() < 25  # a random policy balances ~22 steps on average

    def always_right(key, obs):
        return jnp.ones(obs.shape[0], jnp.int32)

    pushed = np.asarray(fn.rl.evaluate(ENV, always_right, jax.random.key(1), 20))
    assert pushed.max() < 15  # pushing one way topples the pole within a few steps


def _ending_states(num_envs, ending):
    """CartPole states: the copies in ``ending`` are truncated by their next step."""
    obs = jax.random.uniform(jax.random.key(7), (num_envs, 4), minval=-0.05, maxval=0.05)
    time = jnp.where(jnp.asarray(ending), 499, 3)
    return fn.rl.cartpole.from_observation(obs, time)


def test_step_batch_starts_every_ended_episode_from_its_own_reset_over_several_pools():
    n = 48
    ending = np.arange(n) % 3 != 0  # 32 episodes end, pools of 5: seven pools drawn
    states = _ending_states(n, ending)
    action = jnp.arange(n, dtype=jnp.int32) % 2
    step = jax.jit(lambda key, s, a: fn.rl.step_batch(ENV, key, s, a, reset_pool=5))
    obs, new, reward, done, info = step(jax.random.key(1), states, action)
    trans = jax.jit(jax.vmap(ENV.transition, in_axes=(None, 0, 0, None)))(
        None, states, action, ENV.default_params
    )
    np.testing.assert_array_equal(done, ending)
    close = dict(rtol=1e-6, atol=1e-7)  # the same float32 arithmetic, fused differently
    np.testing.assert_allclose(info["final_observation"], trans[0], **close)
    np.testing.assert_array_equal(reward, trans[2])
    # The copies that go on are the transition's; the ended ones start afresh.
    np.testing.assert_allclose(np.asarray(obs)[~ending], np.asarray(trans[0])[~ending], **close)
    np.testing.assert_array_equal(np.asarray(new.time)[~ending], 4)
    np.testing.assert_array_equal(np.asarray(new.time)[ending], 0)
    started = np.asarray(obs)[ending]
    assert np.all(np.abs(started) <= 0.05)
    assert len({tuple(row) for row in started.tolist()}) == 32  # 32 independent draws
    np.testing.assert_array_equal(obs, fn.rl.cartpole.observation(new))
    again = step(jax.random.key(1), states, action)
    np.testing.assert_array_equal(again[0], obs)
    other = step(jax.random.key(2), states, action)[0]
    assert not np.array_equal(np.asarray(other)[ending], started)


def test_step_batch_resets_are_uniform_in_the_reset_box():
    n = 4096
    states = _ending_states(n, np.ones(n, bool))
    obs = jax.jit(lambda key: fn.rl.step_batch(ENV, key, states, jnp.zeros(n, jnp.int32))[0])(
        jax.random.key(3)
    )
    obs = np.asarray(obs)
    # Uniform on [-0.05, 0.05]: mean 0, std 0.1 / sqrt(12); each quarter holds a quarter.
    np.testing.assert_allclose(obs.mean(0), 0.0, atol=4 * 0.0289 / np.sqrt(n))
    np.testing.assert_allclose(obs.std(0), 0.1 / np.sqrt(12), rtol=0.05)
    counts = np.stack([np.histogram(obs[:, i], 4, (-0.05, 0.05))[0] for i in range(4)])
    assert np.all(np.abs(counts - n / 4) < 5 * np.sqrt(n * 3 / 16))


def test_step_batch_splits_a_key_per_copy_for_a_random_transition():
    def noisy_transition(key, state, action, params):
        obs, state, reward, done, info = fn.rl.cartpole.transition(key, state, action, params)
        return obs, state, reward + jax.random.uniform(key), done, info

    noisy = ENV._replace(transition=noisy_transition, deterministic=False)
    _, states = fn.rl.reset_batch(ENV, jax.random.key(0), 8)
    reward = fn.rl.step_batch(noisy, jax.random.key(1), states, jnp.ones(8, jnp.int32))[2]
    transition_key, _ = jax.random.split(jax.random.key(1))
    expected = 1.0 + jax.vmap(jax.random.uniform)(jax.random.split(transition_key, 8))
    np.testing.assert_allclose(reward, expected)


def test_random_policy_draws_each_action_equally_often():
    obs = jnp.zeros((3000, 4))
    for num_actions in (1, 2, 3, 4, 8):
        actions = np.asarray(fn.rl.random_policy(num_actions)(jax.random.key(num_actions), obs))
        assert actions.shape == (3000,) and actions.dtype == np.int32
        counts = np.bincount(actions, minlength=num_actions)
        assert len(counts) == num_actions
        expected = 3000 / num_actions
        assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    with pytest.raises(ValueError, match="num_actions"):
        fn.rl.random_policy(0)
