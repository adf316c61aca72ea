"""REINFORCE and A2C: the whole training loop is one compiled scan, vmapped over seeds;
it compiles once, the same key gives the same learning curve, and a short run learns."""

import jax
import numpy as np
import pytest

import funcnets as fn

ENV = fn.rl.CartPole()
SEEDS, ITERATIONS = 2, 25


def small_reinforce(value=True):
    return fn.rl.reinforce(
        ENV,
        fn.models.mlp([32, 2], activation=fn.tanh),
        fn.optim.adam(1e-2),
        value=fn.models.mlp([32, 1], activation=fn.tanh) if value else None,
        num_envs=8,
        num_steps=200,
    )


@pytest.fixture(scope="module")
def reinforce_runs():
    """Two calls of one jitted, vmapped training loop from the same keys; traces counted."""
    agent, traces = small_reinforce(), []

    @jax.jit
    def run(ts):
        traces.append(1)
        return jax.vmap(lambda ts: fn.rl.train(agent, ts, ITERATIONS))(ts)

    keys = jax.random.split(jax.random.key(0), SEEDS)
    first = run(jax.vmap(agent.init)(keys))
    second = run(jax.vmap(agent.init)(keys))
    more = run(first[0])  # continuing from where the first call stopped
    return agent, run, traces, first, second, more


def test_training_loop_compiles_once(reinforce_runs):
    _, run, traces, first, _, more = reinforce_runs
    assert len(traces) == 1  # three calls, one trace: one compiled program
    np.testing.assert_array_equal(first[0].step, [ITERATIONS] * SEEDS)
    np.testing.assert_array_equal(more[0].step, [2 * ITERATIONS] * SEEDS)


def test_same_key_gives_the_same_learning_curve(reinforce_runs):
    _, _, _, first, second, _ = reinforce_runs
    for name in first[1]:
        np.testing.assert_array_equal(first[1][name], second[1][name], err_msg=name)
    for a, b in zip(jax.tree.leaves(first[0].params), jax.tree.leaves(second[0].params)):
        np.testing.assert_array_equal(a, b)
    curves = np.asarray(first[1]["return"])
    assert curves.shape == (SEEDS, ITERATIONS) and not np.array_equal(curves[0], curves[1])


def test_reinforce_smoke_run_improves_the_mean_return(reinforce_runs):
    _, _, _, first, _, more = reinforce_runs
    returns = np.concatenate([first[1]["return"], more[1]["return"]], axis=1)
    early, late = returns[:, :5].mean(), returns[:, -5:].mean()
    assert late > 2.5 * early, (early, late)
    assert np.all(first[1]["finite"]) and np.all(more[1]["finite"])
    # env_steps counts the real steps of each iteration's 8 episodes, which grow with the return.
    steps = np.asarray(more[1]["env_steps"])
    np.testing.assert_allclose(steps / 8, np.asarray(more[1]["return"]), rtol=1e-6)


def test_evaluation_of_trained_agents_beats_the_random_policy(reinforce_runs):
    agent, _, _, _, _, more = reinforce_runs

    def score(ts, key):
        return fn.rl.evaluate(ENV, agent.policy(ts, greedy=True), key, 20).mean()

    scores = jax.jit(jax.vmap(score))(more[0], jax.random.split(jax.random.key(9), SEEDS))
    assert np.all(np.asarray(scores) > 60)  # a random policy averages ~22


def test_a2c_smoke_run_improves_the_mean_return():
    agent = fn.rl.a2c(
        ENV,
        fn.models.mlp([32, 2], activation=fn.tanh),
        fn.models.mlp([32, 1], activation=fn.tanh),
        fn.optim.adam(3e-3),
        num_envs=8,
        num_steps=16,
    )
    run = jax.jit(jax.vmap(lambda ts: fn.rl.train(agent, ts, 150)))
    ts, metrics = run(jax.vmap(agent.init)(jax.random.split(jax.random.key(0), SEEDS)))
    returns = np.asarray(metrics["return"])
    # "return" is each copy's last finished episode (0 before any ended): compare after warm-up.
    assert returns[:, -10:].mean() > 2.5 * returns[:, 10:20].mean()
    assert ts.state["env"][0].shape == (SEEDS, 8, 4)
    np.testing.assert_array_equal(metrics["env_steps"], 8 * 16)


def test_reinforce_with_the_mean_baseline_takes_a_step():
    agent = small_reinforce(value=False)
    ts, metrics = jax.jit(agent.step)(agent.init(jax.random.key(0)))
    assert set(ts.params) == {"policy"} and float(metrics["value_loss"]) == 0.0
    assert bool(metrics["finite"]) and int(ts.step) == 1


def test_a_saved_run_resumes_bit_for_bit(reinforce_runs, tmp_path):
    _, run, traces, first, _, more = reinforce_runs
    fn.checkpoint.save(tmp_path / "agents.ckpt", first[0])
    loaded = fn.checkpoint.load(tmp_path / "agents.ckpt", like=first[0])
    resumed = run(loaded)
    assert len(traces) == 1
    for a, b in zip(jax.tree.leaves(resumed[1]), jax.tree.leaves(more[1])):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(resumed[0].params), jax.tree.leaves(more[0].params)):
        np.testing.assert_array_equal(a, b)
