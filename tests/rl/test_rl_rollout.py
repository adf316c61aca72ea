"""Rollouts, returns and evaluation: checked against plain Python loops."""

import jax
import jax.numpy as jnp
import numpy as np

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
