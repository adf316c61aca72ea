"""Tests for funcnets.losses: values against numpy formulas and optax, reductions, errors,
gradients, stability for logits of 1e4, penalties on pytrees, and properties."""

import re
from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funcnets import losses as L

# Speed: tests call jitted functions, and each table of cases below is evaluated by one
# compiled program (cached), several times faster than compiling per case or op by op.


def table_outputs(table, compute):
    """``{name: compute(entry, *arguments)}`` for a table whose entries hold their arguments
    second, from one compiled program (arguments passed in, not closed over as constants)."""
    arguments = {name: entry[1] for name, entry in table.items()}
    return jax.jit(lambda args: {name: compute(table[name], *args[name]) for name in table})(
        arguments
    )


rng = np.random.default_rng(0)
N, C = 8, 5
PRED = rng.normal(size=(N, C)).astype(np.float32) * 2
TARGET = rng.normal(size=(N, C)).astype(np.float32)
LOGITS = rng.normal(size=(N, C)).astype(np.float32) * 3
SOFT = rng.uniform(size=(N, C)).astype(np.float32)  # soft binary targets in [0, 1)
PROBS = (SOFT / SOFT.sum(-1, keepdims=True)).astype(np.float32)
PROBS_WITH_ZEROS = np.where(PROBS > 0.2, PROBS, 0).astype(np.float32)
PROBS_WITH_ZEROS /= PROBS_WITH_ZEROS.sum(-1, keepdims=True)
LABELS = rng.integers(0, C, size=N).astype(np.int32)
SIGNS = np.where(rng.uniform(size=(N, C)) < 0.5, -1.0, 1.0).astype(np.float32)


def np_log_softmax(z):
    z = np.float64(z)
    return (
        z
        - z.max(-1, keepdims=True)
        - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1))[..., None]
    )


def np_huber(p, t, delta):
    e = np.abs(np.float64(p) - t)
    return np.where(e <= delta, 0.5 * e**2, delta * (e - 0.5 * delta))


def np_bce(z, t):
    sig = 1 / (1 + np.exp(-np.float64(z)))
    return -t * np.log(sig) - (1 - t) * np.log(1 - sig)


def np_kl(log_q, p):
    p = np.float64(p)
    return np.sum(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - log_q), 0), axis=-1)


# name -> (loss, arguments, numpy reference of the "none" losses, "none" shape)
CASES = {
    "mse": (L.mse, (PRED, TARGET), lambda p, t: (np.float64(p) - t) ** 2, (N, C)),
    "mae": (L.mae, (PRED, TARGET), lambda p, t: np.abs(np.float64(p) - t), (N, C)),
    "huber": (L.huber, (PRED, TARGET), partial(np_huber, delta=1.0), (N, C)),
    "huber(delta=0.5)": (
        partial(L.huber, delta=0.5),
        (PRED, TARGET),
        partial(np_huber, delta=0.5),
        (N, C),
    ),
    "binary_cross_entropy": (L.binary_cross_entropy, (LOGITS, SOFT), np_bce, (N, C)),
    "cross_entropy": (
        L.cross_entropy,
        (LOGITS, PROBS),
        lambda z, p: -(p * np_log_softmax(z)).sum(-1),
        (N,),
    ),
    "sparse_cross_entropy": (
        L.sparse_cross_entropy,
        (LOGITS, LABELS),
        lambda z, y: -np_log_softmax(z)[np.arange(N), y],
        (N,),
    ),
    "kl_divergence": (
        L.kl_divergence,
        (np_log_softmax(LOGITS).astype(np.float32), PROBS_WITH_ZEROS),
        np_kl,
        (N,),
    ),
    "hinge": (
        L.hinge,
        (PRED, SIGNS),
        lambda s, t: np.maximum(0, 1 - t * np.float64(s)).sum(-1),
        (N,),
    ),
}


@cache
def case_outputs():
    def every_reduction(entry, *args):
        loss = entry[0]
        return [loss(*args, reduction=r) for r in ("none", "sum", "mean")] + [loss(*args)]

    return table_outputs(CASES, every_reduction)


@pytest.mark.parametrize("name", CASES)
def test_values_and_every_reduction(name):
    _, args, reference, none_shape = CASES[name]
    expected = reference(*args)
    per_item, summed, mean, default = case_outputs()[name]
    assert per_item.shape == none_shape
    assert per_item.dtype == jnp.float32
    np.testing.assert_allclose(per_item, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(summed, expected.sum(), rtol=1e-5)
    np.testing.assert_allclose(mean, expected.mean(), rtol=1e-5)
    assert default.shape == ()
    np.testing.assert_array_equal(default, mean)


OPTAX = {
    "mse": (L.mse, (PRED, TARGET), optax.losses.squared_error),
    "huber": (L.huber, (PRED, TARGET), optax.losses.huber_loss),
    "huber(delta=0.5)": (
        partial(L.huber, delta=0.5),
        (PRED, TARGET),
        partial(optax.losses.huber_loss, delta=0.5),
    ),
    "binary_cross_entropy": (
        L.binary_cross_entropy,
        (LOGITS, SOFT),
        optax.losses.sigmoid_binary_cross_entropy,
    ),
    "cross_entropy": (L.cross_entropy, (LOGITS, PROBS), optax.losses.softmax_cross_entropy),
    "sparse_cross_entropy": (
        L.sparse_cross_entropy,
        (LOGITS, LABELS),
        optax.losses.softmax_cross_entropy_with_integer_labels,
    ),
    "kl_divergence": (
        L.kl_divergence,
        (np_log_softmax(LOGITS).astype(np.float32), PROBS_WITH_ZEROS),
        optax.losses.kl_divergence,
    ),
    # optax's hinge is elementwise; ours sums it over the class axis.
    "hinge": (L.hinge, (PRED, SIGNS), lambda s, t: optax.losses.hinge_loss(s, t).sum(-1)),
}


@cache
def optax_outputs():
    def both(entry, *args):
        loss, _, reference = entry
        return loss(*args, reduction="none"), reference(*args)

    return table_outputs(OPTAX, both)


@pytest.mark.parametrize("name", OPTAX)
def test_matches_optax(name):
    ours, theirs = optax_outputs()[name]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_binary_svm_hinge_with_one_column_is_optax_hinge():
    scores, targets = PRED[:, :1], SIGNS[:, :1]
    ours, theirs = jax.jit(
        lambda s, t: (L.hinge(s, t, reduction="none"), optax.losses.hinge_loss(s[:, 0], t[:, 0]))
    )(scores, targets)
    np.testing.assert_allclose(ours, theirs)


def test_gradients_match_closed_forms():
    def summed(loss):
        return jax.grad(partial(loss, reduction="sum"))

    @jax.jit
    def gradients():
        return [
            summed(L.mse)(PRED, TARGET),
            jax.grad(L.mse)(PRED, TARGET),  # mean over elements
            summed(L.mae)(PRED, TARGET),
            summed(L.huber)(PRED, TARGET),
            summed(L.binary_cross_entropy)(LOGITS, SOFT),
            summed(L.cross_entropy)(LOGITS, PROBS),
            summed(L.sparse_cross_entropy)(LOGITS, LABELS),
            summed(L.kl_divergence)(LOGITS, PROBS_WITH_ZEROS),
            summed(L.hinge)(PRED, SIGNS),
        ]

    sig = 1 / (1 + np.exp(-np.float64(LOGITS)))
    softmax = np.exp(np_log_softmax(LOGITS))
    error = np.float64(PRED) - TARGET
    closed_forms = [
        2 * error,
        2 * error / error.size,
        np.sign(error),
        np.clip(error, -1, 1),
        sig - SOFT,
        softmax - PROBS,
        softmax - np.eye(C)[LABELS],
        -PROBS_WITH_ZEROS,
        np.where(SIGNS * PRED < 1, -SIGNS, 0),
    ]
    for actual, expected in zip(gradients(), closed_forms, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_binary_cross_entropy_gradient_at_zero_logit():
    g = jax.jit(jax.grad(partial(L.binary_cross_entropy, reduction="sum")))(
        jnp.zeros(3), jnp.array([0.0, 0.5, 1.0])
    )
    np.testing.assert_allclose(g, [0.5, 0.0, -0.5])


BIG = 1e4
HUGE_LOGITS = jnp.array([[BIG, -BIG, 0.0], [-BIG, BIG, BIG], [BIG, BIG, BIG]])
HUGE = {
    "binary_cross_entropy": (
        L.binary_cross_entropy,
        (HUGE_LOGITS, jnp.array([[1.0, 0.0, 1.0], [1.0, 0.0, 0.5], [0.0, 1.0, 1.0]])),
        [[0.0, 0.0, np.log(2)], [BIG, BIG, BIG / 2], [BIG, 0.0, 0.0]],
    ),
    "cross_entropy": (
        L.cross_entropy,
        (HUGE_LOGITS, jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])),
        [0.0, 2 * BIG + np.log(2), np.log(3)],
    ),
    "sparse_cross_entropy": (
        L.sparse_cross_entropy,
        (HUGE_LOGITS, jnp.array([1, 2, 0])),
        [2 * BIG, np.log(2), np.log(3)],
    ),
}


@cache
def huge_outputs():
    def values_and_gradients(entry, logits, targets):
        loss = entry[0]
        return loss(logits, targets, reduction="none"), jax.grad(loss)(logits, targets)

    return table_outputs(HUGE, values_and_gradients)


@pytest.mark.parametrize("name", HUGE)
def test_cross_entropies_finite_for_logits_of_1e4(name):
    expected = HUGE[name][2]
    values, grads = huge_outputs()[name]
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert np.all(np.isfinite(grads))
    assert np.all(np.abs(grads) <= 1.0)


def test_kl_divergence_finite_for_log_softmax_of_1e4_logits():
    log_q = jax.nn.log_softmax(HUGE_LOGITS)
    p = jnp.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    value, grads = jax.jit(jax.value_and_grad(L.kl_divergence, argnums=(0, 1)))(log_q, p)
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize("name", CASES)
def test_bad_reduction_names_allowed_values(name):
    loss, args, _, _ = CASES[name]
    base_name = name.split("(")[0]
    for bad in ("avg", "Mean", None):
        with pytest.raises(ValueError, match=rf"{base_name}.*'mean', 'sum' or 'none'.*{bad!r}"):
            loss(*args, reduction=bad)


MISMATCHED = {
    "mse": (L.mse, PRED, TARGET[:, :1]),
    "mae": (L.mae, PRED, TARGET.T),
    "huber": (L.huber, PRED[0], TARGET),
    "binary_cross_entropy": (L.binary_cross_entropy, LOGITS, SOFT[:, :, None]),
    "cross_entropy": (L.cross_entropy, LOGITS, PROBS[:, :3]),
    "sparse_cross_entropy": (L.sparse_cross_entropy, LOGITS, LABELS[:, None]),
    "kl_divergence": (L.kl_divergence, LOGITS, PROBS[:4]),
    "hinge": (L.hinge, PRED[:, :1], SIGNS),
}


@pytest.mark.parametrize("name", MISMATCHED)
def test_shape_mismatch_names_loss_and_both_shapes(name):
    loss, a, b = MISMATCHED[name]
    with pytest.raises(ValueError) as info:
        loss(a, b)
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert str(a.shape) in message and str(b.shape) in message


NO_CLASS_AXIS = {
    "cross_entropy": lambda: L.cross_entropy(jnp.array(1.0), jnp.array(1.0)),
    "sparse_cross_entropy": lambda: L.sparse_cross_entropy(jnp.array(1.0), jnp.array(0)),
    "kl_divergence": lambda: L.kl_divergence(jnp.array(0.0), jnp.array(1.0)),
    "hinge": lambda: L.hinge(jnp.array(1.0), jnp.array(1.0)),
}


@pytest.mark.parametrize("name", NO_CLASS_AXIS)
def test_per_example_losses_need_a_class_axis(name):
    with pytest.raises(ValueError, match=rf"^{name}: .*class axis"):
        NO_CLASS_AXIS[name]()


def test_sparse_cross_entropy_label_checks():
    with pytest.raises(ValueError, match="integers"):
        L.sparse_cross_entropy(LOGITS, LABELS.astype(np.float32))
    out_of_range = jax.jit(partial(L.sparse_cross_entropy, reduction="none"))(
        LOGITS[:3], jnp.array([-1, C, 0])
    )
    assert np.isnan(out_of_range[0]) and np.isnan(out_of_range[1]) and np.isfinite(out_of_range[2])


def with_bad_entry(targets, value):
    """A copy of the first two examples' targets with one entry of example 1 set to value."""
    targets = np.array(targets[:2])
    targets[1, 0] = value
    return targets


# name -> (loss, (inputs, targets whose example 1 is out of the loss's domain), message)
OUT_OF_DOMAIN = {
    "binary_cross_entropy(2)": (
        L.binary_cross_entropy,
        (LOGITS[:2], with_bad_entry(SOFT, 2.0)),
        "targets must be probabilities in [0, 1], got 2.0",
    ),
    "binary_cross_entropy(-1)": (
        L.binary_cross_entropy,
        (LOGITS[:2], with_bad_entry(SOFT, -1.0)),
        "targets must be probabilities in [0, 1], got -1.0",
    ),
    "cross_entropy": (
        L.cross_entropy,
        (LOGITS[:2], with_bad_entry(PROBS, -0.5)),
        "target_probs must be probabilities in [0, 1], got -0.5",
    ),
    "kl_divergence": (
        L.kl_divergence,
        (LOGITS[:2], with_bad_entry(PROBS, 1.5)),
        "target_probs must be probabilities in [0, 1], got 1.5",
    ),
    "sparse_cross_entropy": (
        L.sparse_cross_entropy,
        (LOGITS[:2], np.array([0, C], np.int32)),
        f"labels must be in [0, {C}) for {C} classes, got {C}",
    ),
    "hinge(0/1 targets)": (
        L.hinge,
        (PRED[:2], with_bad_entry(SIGNS, 0.0)),
        "targets must be ±1, got 0.0",
    ),
}


@pytest.mark.parametrize("case", OUT_OF_DOMAIN)
def test_out_of_domain_targets_raise_when_concrete(case):
    loss, arguments, message = OUT_OF_DOMAIN[case]
    name = case.split("(")[0]
    with pytest.raises(ValueError, match=f"^{re.escape(f'{name}: {message}')}$"):
        loss(*arguments)


def test_out_of_domain_targets_give_nan_losses_under_jit():
    """Under jit nothing can raise: the bad example's losses are NaN (so the mean is, and the
    training loop's non-finite guard stops), the others are unchanged."""
    none = table_outputs(OUT_OF_DOMAIN, lambda entry, x, t: entry[0](x, t, reduction="none"))
    mean = table_outputs(OUT_OF_DOMAIN, lambda entry, x, t: entry[0](x, t))
    for case, (loss, (inputs, targets), _) in OUT_OF_DOMAIN.items():
        good = loss(inputs[:1], targets[:1], reduction="none")
        np.testing.assert_allclose(none[case][:1], good, rtol=1e-6, err_msg=case)
        assert np.isnan(none[case][1]).any() and np.isnan(mean[case]), case


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan")])
def test_huber_delta_must_be_positive(delta):
    with pytest.raises(ValueError, match=rf"^huber: delta must be > 0, got {delta}$"):
        L.huber(PRED, TARGET, delta=delta)


@pytest.mark.parametrize("loss", [L.mse, L.mae, L.huber])
def test_integer_inputs_are_computed_in_float(loss):
    """int8 100 - (-100) would wrap to -56; the losses compute in float32."""
    pred, target = jnp.array([100, 3], jnp.int8), jnp.array([-100, 3], jnp.int8)
    value = loss(pred, target, reduction="none")
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(value, loss(np.float32(pred), np.float32(target), reduction="none"))
    assert float(value[0]) == {L.mse: 40000.0, L.mae: 200.0, L.huber: 199.5}[loss]


def test_eager_jit_and_vmap_agree():
    np.testing.assert_allclose(L.mse(PRED, TARGET), jax.jit(L.mse)(PRED, TARGET), rtol=1e-6)
    batched = jax.vmap(lambda z, y: L.sparse_cross_entropy(z, y, reduction="none"))
    direct = partial(L.sparse_cross_entropy, reduction="none")
    np.testing.assert_allclose(
        jax.jit(batched)(LOGITS, LABELS), jax.jit(direct)(LOGITS, LABELS), rtol=1e-6
    )


PARAMS = {
    "dense": {"w": jnp.array([[1.0, -2.0], [0.5, 0.0]]), "b": jnp.array([-3.0, 4.0])},
    "stack": [jnp.array([1.5]), (jnp.array([[-1.0, 2.0, -0.5]]),)],
}


def test_penalties_on_nested_pytree():
    leaves = [np.asarray(p) for p in jax.tree.leaves(PARAMS)]
    l1, l2 = jax.jit(lambda p: (L.l1_penalty(p), L.l2_penalty(p)))(PARAMS)
    np.testing.assert_allclose(l1, sum(np.abs(p).sum() for p in leaves))
    np.testing.assert_allclose(l2, 0.5 * sum((p**2).sum() for p in leaves))
    assert l1.shape == l2.shape == ()
    np.testing.assert_allclose(L.l2_penalty(PARAMS), l2)  # eager
    assert float(L.l1_penalty({})) == float(L.l2_penalty([])) == 0.0


def test_penalty_gradients():
    l1_grads, l2_grads = jax.jit(lambda p: (jax.grad(L.l1_penalty)(p), jax.grad(L.l2_penalty)(p)))(
        PARAMS
    )
    assert jax.tree.structure(l2_grads) == jax.tree.structure(PARAMS)
    jax.tree.map(np.testing.assert_array_equal, l2_grads, PARAMS)  # weight decay: grad = p

    def check_l1(g, p):  # sign(p) away from 0, a subgradient in [-1, 1] at 0
        np.testing.assert_array_equal(np.where(p != 0, g, 0), np.sign(p))
        assert np.all(np.abs(g) <= 1)

    jax.tree.map(check_l1, l1_grads, PARAMS)


def floats32(bound):
    return st.floats(-bound, bound, width=32, allow_subnormal=False)


# A fixed shape keeps hypothesis from compiling a new program per example.
arrays = hnp.arrays(np.float32, (4, 3), elements=floats32(100))


@jax.jit
def all_losses(x, y):
    probs = jax.nn.softmax(y)
    return [
        L.mse(x, y, reduction="none"),
        L.mae(x, y, reduction="none"),
        L.huber(x, y, reduction="none"),
        L.binary_cross_entropy(x, jax.nn.sigmoid(y), reduction="none"),
        L.cross_entropy(x, probs, reduction="none"),
        L.sparse_cross_entropy(x, jnp.argmax(y, axis=-1), reduction="none"),
        L.hinge(x, jnp.where(y >= 0, 1.0, -1.0), reduction="none"),
        L.kl_divergence(jax.nn.log_softmax(x), probs, reduction="none"),
    ]


@settings(max_examples=30, deadline=None)
@given(x=arrays, y=arrays)
def test_losses_are_non_negative(x, y):
    values = all_losses(x, y)
    for value in values[:-1]:
        assert np.all(value >= 0)
    assert np.all(values[-1] >= -1e-5)


huber_jit = jax.jit(lambda x, y, delta: L.huber(x, y, delta, reduction="none"))


@settings(max_examples=30, deadline=None)
@given(x=arrays, y=arrays, delta=st.floats(0.05, 20.0))
def test_huber_between_quadratic_and_linear_bounds(x, y, delta):
    e = np.abs(np.float64(x) - np.float64(y))
    h = np.float64(huber_jit(x, y, delta))
    tolerance = 1e-5 * (1 + e**2)
    assert np.all(h <= np.minimum(0.5 * e**2, delta * e) + tolerance)
    assert np.all(h >= delta * e - 0.5 * delta**2 - tolerance)


TESTED = (set(CASES) | set(OPTAX) | {"l1_penalty", "l2_penalty"}) & set(dir(L))


def test_every_public_name_is_tested():
    assert TESTED == set(L.__all__)
