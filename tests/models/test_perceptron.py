"""The perceptron: Rosenblatt's rule step by step, Novikoff's bound, and XOR.

Novikoff (1962): from zero weights the rule makes at most (R/γ)² updates on
data that a unit vector u of R^(d+1) separates with margin γ (x̃ = (x, 1),
R = max ‖x̃‖). The sets here are built around a known u, and γ is that u's
margin, so (R/γ)² bounds the updates. XOR: no line separates it, so every
epoch makes a mistake and at most 3 of the 4 points are right, while a 2-2-1
tanh MLP trained by `fn.train.make_step` gets all 4.

Every `train` call here has the shape (N, D), 50 epochs and a key, or the
XOR shape, so the scan compiles twice in all.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcnets as fn
from funcnets.models.perceptron import perceptron

N, D = 40, 3
MODEL = perceptron(D)
EPOCHS = 50
XOR_X = jnp.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
XOR_Y = jnp.array([-1, 1, 1, -1])


def separable(x, u, push):
    """Labels by the side of the hyperplane u = (w, b) and each point pushed ``push`` off it.

    Returns ``(x, y, bound)``: float32 points, ±1 labels and Novikoff's (R/γ)² for u.
    """
    x = np.asarray(x, np.float64)
    w, b = u[:-1], u[-1]
    y = np.where(x @ w + b >= 0, 1, -1)
    x = (x + push * y[:, None] * w / np.linalg.norm(w)).astype(np.float32)
    augmented = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    gamma = np.min(y * (augmented @ u)) / np.linalg.norm(u)
    radius = np.max(np.linalg.norm(augmented, axis=1))
    assert gamma > 0
    return x, y.astype(np.int32), (radius / gamma) ** 2


def train_until_separated(x, y, key, bound):
    """Trains EPOCHS at a time, within the bound, to an epoch without mistakes: (params, updates)."""
    params, updates = MODEL.init(), 0
    for call in range(int(bound) // EPOCHS + 2):  # at most `bound` epochs hold a mistake
        key = jax.random.fold_in(key, call)
        params, mistakes = MODEL.train(params, x, y, epochs=EPOCHS, key=key)
        updates += int(mistakes.sum())
        assert updates <= bound, f"{updates} updates > Novikoff's bound {bound:.1f}"
        if mistakes[-1] == 0:
            return params, updates
    raise AssertionError(f"not separated after {updates} updates")


def test_the_rule_on_a_hand_example():
    params = MODEL.init()
    assert int(MODEL.predict(params, jnp.ones(D))) == 0  # on the boundary: a mistake either way
    steps = [  # (x, y, updated, w after, b after)
        ([1.0, 2.0, 0.0], 1, True, [1.0, 2.0, 0.0], 1.0),  # s = 0: corrected
        ([1.0, 2.0, 0.0], 1, False, [1.0, 2.0, 0.0], 1.0),  # s = 6: right, left alone
        ([-1.0, 0.0, 0.0], 1, True, [0.0, 2.0, 0.0], 2.0),  # s = 0 again
        ([3.0, 0.0, 1.0], -1, True, [-3.0, 2.0, -1.0], 1.0),  # s = 2, y = -1: w -= x, b -= 1
        ([0.0, -1.0, 0.0], -1, False, [-3.0, 2.0, -1.0], 1.0),  # s = -1: right
    ]
    for x, y, updated, w, b in steps:
        params, mistake = MODEL.update(params, jnp.array(x), y)
        assert bool(mistake) is updated
        np.testing.assert_array_equal(params["w"], w)
        assert float(params["b"]) == b
    assert MODEL.predict(params, jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).tolist() == [-1, 1]


def test_update_under_jit_equals_eager():
    params = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.25)}
    x = jnp.array([1.0, 1.0, -1.0])
    eager, jitted = MODEL.update(params, x, 1), jax.jit(MODEL.update)(params, x, 1)
    assert bool(eager[1]) and bool(jitted[1])
    jax.tree.map(np.testing.assert_array_equal, eager, jitted)


def test_train_is_the_rule_applied_example_by_example():
    """Integer inputs make every sum exact: the scan must match a plain loop bit for bit."""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (N, D)).astype(np.float32)
    y = rng.choice([-1, 1], N).astype(np.int32)  # random labels: mistakes in every epoch
    key = jax.random.key(5)
    params, mistakes = MODEL.train(MODEL.init(), x, y, epochs=EPOCHS, key=key)
    w, b, expected = np.zeros(D, np.float32), np.float32(0), []
    for e in range(EPOCHS):
        count = 0
        for i in np.asarray(jax.random.permutation(jax.random.fold_in(key, e), N)):
            if y[i] * (x[i] @ w + b) <= 0:
                w, b, count = w + y[i] * x[i], b + y[i], count + 1
        expected.append(count)
    assert mistakes.tolist() == expected
    assert min(expected) > 0
    np.testing.assert_array_equal(params["w"], w)
    assert float(params["b"]) == b


@pytest.mark.parametrize("seed, push", [(0, 0.02), (1, 0.1), (2, 0.3), (3, 1.0)])
def test_novikoff_bound_on_generated_sets(seed, push):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=D + 1)
    x, y, bound = separable(rng.uniform(-2, 2, (N, D)), u, push)
    params, updates = train_until_separated(x, y, jax.random.key(seed), bound)
    assert updates > 0
    assert MODEL.predict(params, x).tolist() == y.tolist()


coordinates = st.floats(-2, 2, width=32, allow_subnormal=False)


@settings(max_examples=25, deadline=None)
@given(
    x=hnp.arrays(np.float32, (N, D), elements=coordinates),
    u=hnp.arrays(np.float64, D + 1, elements=st.floats(-1, 1)),
    push=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
)
def test_novikoff_bound_holds_for_any_separable_set(x, u, push, seed):
    u[:-1] += np.where(u[:-1] >= 0, 0.1, -0.1)  # ‖w‖ > 0: a hyperplane, not all one class
    x, y, bound = separable(x, u, push)
    params, _ = train_until_separated(x, y, jax.random.key(seed), bound)
    assert MODEL.predict(params, x).tolist() == y.tolist()


def test_xor_is_never_separated():
    model = perceptron(2)
    params, mistakes = model.train(model.init(), XOR_X, XOR_Y, epochs=30, key=jax.random.key(0))
    assert int(mistakes.min()) >= 1
    assert float(jnp.mean(model.predict(params, XOR_X) == XOR_Y)) <= 0.75


def test_a_2_2_1_mlp_solves_xor():
    """Seed-fixed: about half of all starts of a 2-2-1 net end in a local minimum."""
    net = fn.models.mlp([2, 1], activation=fn.tanh)
    optimizer = fn.optim.adam(0.1)
    step = fn.train.make_step(net, fn.losses.binary_cross_entropy, optimizer)
    targets = (XOR_Y[:, None] > 0).astype(jnp.float32)
    ts = fn.train.init(net, optimizer, jax.random.key(2), XOR_X.shape)
    ts, metrics = jax.jit(
        lambda ts: jax.lax.scan(lambda ts, _: step(ts, (XOR_X, targets)), ts, length=200)
    )(ts)
    logits, _ = net.apply(ts.params, ts.state, XOR_X)
    assert float(metrics["loss"][-1]) < 0.05
    assert float(fn.train.accuracy(logits, targets)) == 1.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="features"):
        perceptron(0)
    with pytest.raises(ValueError, match="x must end in 3 features"):
        MODEL.predict(MODEL.init(), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="y must be -1 or \\+1, got 0"):
        MODEL.train(MODEL.init(), jnp.ones((2, D)), jnp.array([1, 0]), epochs=1)
    with pytest.raises(ValueError, match="y must have shape \\(2,\\)"):
        MODEL.train(MODEL.init(), jnp.ones((2, D)), jnp.ones(3), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        MODEL.train(MODEL.init(), jnp.ones((2, D)), jnp.ones(2), epochs=0)
    with pytest.raises(ValueError, match="one example"):
        MODEL.update(MODEL.init(), jnp.ones((2, D)), 1)
