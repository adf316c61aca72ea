"""Every alias against optax: 1,000 steps on the same noisy quadratic.

Each case builds the optimizer with the same call on both libraries
(``build(fo)`` and ``build(optax)``), so names, argument names and schedules
are checked along with the numbers.
"""

import inspect

import jax
import jax.numpy as jnp
import optax
import pytest

import funcnets.optim as fo

EXACT = {"steps": 1000, "rtol": 1e-5, "atol": 1e-6}
# bfloat16 accumulators agree to bfloat16 rounding only: optax multiplies decay * mu in
# bfloat16 (a weak-typed Python float times a bfloat16 array), funcnets promotes mu to the
# update's float32 first (see docs/optimizers.md).
BFLOAT16 = {"steps": 100, "rtol": 1e-2, "atol": 1e-2}


def decay_mask(params):
    """Weight decay on matrices only (not on biases or scalars)."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def same(build):
    return build(fo), build(optax)


CASES = {
    "sgd": {
        "defaults": same(lambda m: m.sgd(0.05)),
        "momentum": same(lambda m: m.sgd(0.05, momentum=0.9)),
        "nesterov+cosine": same(
            lambda m: m.sgd(
                m.cosine_decay_schedule(0.05, 800, alpha=0.1), momentum=0.8, nesterov=True
            )
        ),
    },
    "adagrad": {
        "defaults": same(lambda m: m.adagrad(0.1)),
        "custom+staircase": same(
            lambda m: m.adagrad(
                m.exponential_decay(0.2, 100, 0.9, staircase=True),
                initial_accumulator_value=0.5,
                eps=1e-5,
            )
        ),
    },
    "rmsprop": {
        "defaults": same(lambda m: m.rmsprop(0.01)),
        "centered+nesterov+linear": same(
            lambda m: m.rmsprop(
                m.linear_schedule(0.01, 0.001, 600, transition_begin=100),
                decay=0.95,
                eps=1e-6,
                initial_scale=1.0,
                centered=True,
                momentum=0.9,
                nesterov=True,
            )
        ),
        "eps_outside+debiased+momentum": same(
            lambda m: m.rmsprop(0.005, eps_in_sqrt=False, bias_correction=True, momentum=0.5)
        ),
    },
    "adadelta": {
        # optax 0.2.8 reads learning_rate=None as "no scaling" (an ascent step);
        # funcnets reads it as the paper's eta = 1 (see test_adadelta_default_descends).
        "defaults": (fo.adadelta(), optax.adadelta(learning_rate=1.0)),
        "custom+piecewise": same(
            lambda m: m.adadelta(
                m.piecewise_constant_schedule(2.0, {200: 0.5, 600: 0.1}),
                rho=0.95,
                eps=1e-5,
                weight_decay=0.01,
                weight_decay_mask=decay_mask,
            )
        ),
    },
    "adam": {
        "defaults": same(lambda m: m.adam(0.01)),
        "custom+warmup_cosine": same(
            lambda m: m.adam(
                m.warmup_cosine_decay_schedule(0.0, 0.02, 100, 900, end_value=0.001),
                b1=0.8,
                b2=0.99,
                eps=1e-6,
                eps_root=1e-8,
            )
        ),
        "mu_bfloat16": (*same(lambda m: m.adam(0.01, mu_dtype=jnp.bfloat16)), BFLOAT16),
    },
    "adamw": {
        "defaults": same(lambda m: m.adamw(0.01)),
        "custom+constant": same(
            lambda m: m.adamw(
                m.constant_schedule(0.01), b1=0.85, weight_decay=0.1, mask=decay_mask, nesterov=True
            )
        ),
        "scheduled_decay": same(
            lambda m: m.adamw(0.01, weight_decay=m.linear_schedule(0.2, 0.01, 500))
        ),
    },
    "adamax": {
        "defaults": same(lambda m: m.adamax(0.01)),
        "custom+exponential": same(
            lambda m: m.adamax(
                m.exponential_decay(0.02, 50, 0.95, transition_begin=20, end_value=0.002),
                b1=0.8,
                b2=0.99,
                eps=1e-6,
            )
        ),
    },
    "nadam": {
        "defaults": same(lambda m: m.nadam(0.01)),
        "custom+cosine": same(
            lambda m: m.nadam(
                m.cosine_decay_schedule(0.02, 900, alpha=0.05, exponent=2.0),
                b1=0.85,
                b2=0.995,
                eps_root=1e-8,
            )
        ),
    },
    "amsgrad": {
        "defaults": same(lambda m: m.amsgrad(0.01)),
        "paper_form+linear": same(
            lambda m: m.amsgrad(
                m.linear_schedule(0.02, 0.005, 700),
                b2=0.99,
                bias_correction_mu=False,
                bias_correction_nu=False,
            )
        ),
    },
    "lion": {
        "defaults": same(lambda m: m.lion(0.001)),
        "custom+warmup_cosine": same(
            lambda m: m.lion(
                m.warmup_cosine_decay_schedule(1e-4, 3e-3, 50, 1000),
                b1=0.95,
                b2=0.98,
                weight_decay=0.01,
                mask=decay_mask,
            )
        ),
    },
}

PARAMS = [
    pytest.param(fn_tx, optax_tx, *(tol or [EXACT]), id=f"{name}-{case}")
    for name, cases in CASES.items()
    for case, (fn_tx, optax_tx, *tol) in cases.items()
]
DEFAULTS = [pytest.param(*p.values[:2], id=p.id) for p in PARAMS if p.id.endswith("-defaults")]


@pytest.mark.parametrize(("fn_tx", "optax_tx", "tol"), PARAMS)
def test_matches_optax_over_1000_jitted_steps(run, trees_close, fn_tx, optax_tx, tol):
    trees_close(*run(fn_tx, optax_tx, steps=tol["steps"]), rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.parametrize(("fn_tx", "optax_tx"), DEFAULTS)
def test_matches_optax_eagerly(run, trees_close, fn_tx, optax_tx):
    trees_close(*run(fn_tx, optax_tx, steps=4, jit=False))


@pytest.mark.parametrize(("fn_tx", "optax_tx"), DEFAULTS)
def test_state_is_arrays_and_a_donated_jitted_step_works(quadratic, trees_close, fn_tx, optax_tx):
    params = quadratic.params
    state = fn_tx.init(params)
    leaves = jax.tree.leaves(state, is_leaf=lambda x: x is None)
    assert all(isinstance(x, jax.Array) for x in leaves), "state leaves must be arrays"
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    assert len(set(paths)) == len(paths), "state leaves must have distinct key paths"

    def step(params, state, grads):
        updates, state = fn_tx.update(grads, state, params)
        return fo.apply_updates(params, updates), state

    grads = jax.tree.map(jnp.ones_like, params)
    expected = step(params, state, grads)
    copies = jax.tree.map(jnp.copy, (params, state))
    got = jax.jit(step, donate_argnums=(0, 1))(*copies, grads)
    trees_close(got, expected)


def test_adam_bias_correction_removes_the_zero_init_bias():
    """A constant gradient g gives m_hat = g and v_hat = g^2, so every step is -lr * sign(g).

    The tolerance is float32's cancellation error in 1 - b2^t at small t (optax has the same).
    """
    tx = fo.adam(1.0, eps=0.0)
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([0.5, -3.0, 1e-3])}
    state = tx.init(params)
    for _ in range(20):
        updates, state = tx.update(grads, state, params)
        assert jnp.allclose(updates["w"], -jnp.sign(grads["w"]), rtol=2e-5, atol=0)


def test_adam_eps_is_outside_the_root_after_bias_correction():
    """First step: m_hat = g, v_hat = g^2, so u = -lr * g / (|g| + eps) (not eps * sqrt(1 - b2))."""
    g, eps = 1e-6, 1e-6
    updates, _ = fo.adam(1.0, eps=eps).update(
        {"w": jnp.array(g)}, fo.adam(1.0).init({"w": jnp.array(0.0)})
    )
    assert jnp.allclose(updates["w"], -g / (g + eps), rtol=2e-5)


def test_adamw_decay_is_multiplied_by_the_learning_rate():
    """With zero gradients Adam's direction is 0, so one step is p <- p - lr * wd * p."""
    lr, wd = 0.1, 0.5
    tx = fo.adamw(lr, weight_decay=wd)
    params = {"w": jnp.array([2.0, -4.0])}
    updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    assert jnp.allclose(updates["w"], -lr * wd * params["w"])


def test_sgd_nesterov_form():
    """m_t = g + mu m_{t-1}, step -lr (g + mu m_t): with g = 1, mu = 0.9 the steps are 1.9, 2.71."""
    tx = fo.sgd(1.0, momentum=0.9, nesterov=True)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    steps = []
    for _ in range(2):
        updates, state = tx.update({"w": jnp.ones(())}, state, params)
        steps.append(float(updates["w"]))
    assert steps == pytest.approx([-1.9, -2.71], rel=1e-6)


@pytest.mark.parametrize(("eps_in_sqrt", "denominator"), [(True, "inside"), (False, "outside")])
def test_rmsprop_eps_placement(eps_in_sqrt, denominator):
    """First step, v = (1 - decay) g^2.

    Inside (the default): g / sqrt(v + eps); outside (PyTorch's form): g / (sqrt(v) + eps).
    """
    g, eps, decay = 1e-3, 1e-4, 0.9
    tx = fo.rmsprop(1.0, decay=decay, eps=eps, eps_in_sqrt=eps_in_sqrt)
    updates, _ = tx.update({"w": jnp.array(g)}, tx.init({"w": jnp.array(0.0)}))
    v = (1 - decay) * g**2
    expected = g / (v + eps) ** 0.5 if denominator == "inside" else g / (v**0.5 + eps)
    assert float(updates["w"]) == pytest.approx(-expected, rel=1e-6)


def test_adadelta_default_descends(quadratic, run):
    """The default learning_rate=None means eta = 1 and moves p towards the minimum."""

    def distance(params):
        return sum(
            float(jnp.sum((p - c) ** 2))
            for p, c in zip(jax.tree.leaves(params), jax.tree.leaves(quadratic.target), strict=True)
        )

    ours, _ = run(fo.adadelta(), optax.adadelta(1.0), steps=50)
    assert distance(ours) < distance(quadratic.params)


def test_every_alias_has_a_case():
    aliases = {
        name
        for name in fo.__all__
        if inspect.isfunction(obj := getattr(fo, name)) and obj.__module__ == "funcnets.optim.alias"
    }
    assert aliases == set(CASES)
    assert all({"defaults"} < set(cases) for cases in CASES.values())


@pytest.mark.parametrize("name", sorted(CASES))
def test_alias_signature_matches_optax(name):
    """Same argument names, kinds and defaults (nadam: optax's minus its fixed nesterov)."""
    ours = inspect.signature(getattr(fo, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    theirs = {k: v for k, v in theirs.items() if not (name == "nadam" and k == "nesterov")}
    assert list(ours) == list(theirs)
    for k, p in ours.items():
        assert (p.kind, p.default) == (theirs[k].kind, theirs[k].default), k
