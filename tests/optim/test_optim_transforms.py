"""Building blocks and combinators against optax, interoperability, and errors."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnets.optim as fo

EXACT = {"steps": 1000, "rtol": 1e-5, "atol": 1e-6}
# bfloat16 accumulators agree to bfloat16 rounding only: optax multiplies decay * mu in
# bfloat16 (a weak-typed Python float times a bfloat16 array), funcnets promotes mu to the
# update's float32 first (see docs/optimizers.md).
BFLOAT16 = {"steps": 100, "rtol": 1e-2, "atol": 1e-2}


def decay_mask(params):
    """True on matrices only."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


PREFIX_MASK = {"dense": True, "scale": False}
LABELS = {"dense": {"w": "adam", "b": "sgd"}, "scale": "frozen"}


def sgd_after(block, m, lr=0.01):
    """The block followed by a fixed step ``-lr``, built from module ``m``."""
    return m.chain(block, m.scale(-lr))


def same(build):
    return build(fo), build(optax)


CASES = {
    "identity": same(lambda m: sgd_after(m.identity(), m, 0.05)),
    "set_to_zero": same(lambda m: m.set_to_zero()),
    "scale": same(lambda m: m.scale(-0.05)),
    "scale_by_learning_rate": same(
        lambda m: m.scale_by_learning_rate(m.linear_schedule(0.1, 0.01, 500))
    ),
    "scale_by_learning_rate-unflipped": same(
        lambda m: sgd_after(m.scale_by_learning_rate(0.05, flip_sign=False), m, 1.0)
    ),
    "trace": same(lambda m: sgd_after(m.trace(0.9), m)),
    "trace-nesterov-bfloat16": (
        *same(lambda m: sgd_after(m.trace(0.8, nesterov=True, accumulator_dtype=jnp.bfloat16), m)),
        BFLOAT16,
    ),
    "scale_by_rss": same(lambda m: sgd_after(m.scale_by_rss(0.2, 1e-6), m, 0.1)),
    "scale_by_rms": same(
        lambda m: sgd_after(
            m.scale_by_rms(0.95, 1e-6, 0.5, eps_in_sqrt=False, bias_correction=True), m
        )
    ),
    "scale_by_stddev": same(
        lambda m: sgd_after(m.scale_by_stddev(0.9, 1e-4, 1.0, bias_correction=True), m)
    ),
    "scale_by_adam": same(
        lambda m: sgd_after(m.scale_by_adam(0.85, 0.99, 1e-6, 1e-9, nesterov=True), m)
    ),
    "scale_by_amsgrad": same(
        lambda m: sgd_after(m.scale_by_amsgrad(0.9, 0.99, bias_correction_nu=False), m)
    ),
    "scale_by_adamax": same(lambda m: sgd_after(m.scale_by_adamax(0.8, 0.99, 1e-6), m)),
    "scale_by_adadelta": same(lambda m: sgd_after(m.scale_by_adadelta(0.8, 1e-5), m, 1.0)),
    "scale_by_lion": same(lambda m: sgd_after(m.scale_by_lion(0.8, 0.95), m, 1e-3)),
    "scale_by_lion-bfloat16": (
        *same(lambda m: sgd_after(m.scale_by_lion(0.8, 0.95, mu_dtype=jnp.bfloat16), m, 1e-3)),
        BFLOAT16,
    ),
    "add_decayed_weights": same(
        lambda m: sgd_after(
            m.add_decayed_weights(m.exponential_decay(0.2, 100, 0.5), mask=decay_mask), m, 0.05
        )
    ),
    "clip": same(lambda m: sgd_after(m.clip(0.3), m, 0.05)),
    "clip_by_global_norm": same(lambda m: sgd_after(m.clip_by_global_norm(0.5), m, 0.05)),
    "chain": same(lambda m: m.chain(m.clip_by_global_norm(1.0), m.trace(0.5), m.adamw(0.01))),
    "masked": same(lambda m: sgd_after(m.masked(m.scale_by_adam(), decay_mask), m)),
    "masked-prefix": same(lambda m: sgd_after(m.masked(m.trace(0.9), PREFIX_MASK), m)),
    "multi_transform": same(
        lambda m: m.multi_transform(
            {"adam": m.adam(0.01), "sgd": m.sgd(0.05, 0.9), "frozen": m.set_to_zero()}, LABELS
        )
    ),
    # Mixing libraries: optax blocks inside funcnets combinators and the other way round.
    "interop-optax_in_funcnets_chain": (
        fo.chain(optax.clip_by_global_norm(1.0), fo.adam(0.01)),
        optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01)),
    ),
    "interop-funcnets_in_optax_chain": (
        optax.chain(fo.clip_by_global_norm(1.0), optax.trace(0.9), fo.scale(-0.01)),
        optax.chain(optax.clip_by_global_norm(1.0), optax.trace(0.9), optax.scale(-0.01)),
    ),
    "interop-optax_in_funcnets_multi_transform": (
        fo.multi_transform(
            {"adam": optax.adam(0.01), "sgd": fo.sgd(0.05, 0.9), "frozen": fo.set_to_zero()},
            LABELS,
        ),
        optax.multi_transform(
            {"adam": optax.adam(0.01), "sgd": optax.sgd(0.05, 0.9), "frozen": optax.set_to_zero()},
            LABELS,
        ),
    ),
}


@pytest.mark.parametrize(
    ("fn_tx", "optax_tx", "tol"),
    [
        pytest.param(fn_tx, optax_tx, *(tol or [EXACT]), id=k)
        for k, (fn_tx, optax_tx, *tol) in CASES.items()
    ],
)
def test_matches_optax_over_1000_jitted_steps(run, trees_close, fn_tx, optax_tx, tol):
    trees_close(*run(fn_tx, optax_tx, steps=tol["steps"]), rtol=tol["rtol"], atol=tol["atol"])


def test_multi_transform_freezes_set_to_zero_leaves_bit_for_bit(quadratic, run):
    """Transfer learning: train the dense layer, freeze the rest, by a prefix of labels."""
    labels = {"dense": "train", "scale": "frozen"}
    tx = fo.multi_transform({"train": fo.adam(0.01), "frozen": fo.set_to_zero()}, labels)
    ours, _ = run(tx, tx, steps=100)
    assert (ours["scale"] == quadratic.params["scale"]).all()
    assert not (ours["dense"]["w"] == quadratic.params["dense"]["w"]).any()


def test_masked_passes_masked_out_updates_through_and_keeps_no_state_for_them():
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    grads = {"w": jnp.full((2, 2), 3.0), "b": jnp.full(2, -5.0)}
    tx = fo.masked(fo.scale(-0.1), {"w": True, "b": False})
    updates, _ = tx.update(grads, tx.init(params), params)
    assert jnp.allclose(updates["w"], -0.3) and (updates["b"] == grads["b"]).all()
    state = fo.masked(fo.trace(0.9), {"w": True, "b": False}).init(params)
    assert [x.shape for x in jax.tree.leaves(state)] == [(2, 2)]


def test_apply_updates_keeps_the_parameter_dtype():
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2)}
    updates = {"w": jnp.full(3, 0.5), "b": jnp.full(2, 0.25)}
    new = fo.apply_updates(params, updates)
    assert new["w"].dtype == jnp.bfloat16 and new["b"].dtype == jnp.float32
    assert jnp.allclose(new["w"], 1.5) and jnp.allclose(new["b"], 1.25)


def test_funcnets_optimizer_works_with_optax_apply_updates_under_jit(quadratic):
    tx = fo.adam(0.01)

    @jax.jit
    def step(params, state):
        grads = jax.grad(lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(p)))(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params, state = step(quadratic.params, tx.init(quadratic.params))
    assert jax.tree.structure(params) == jax.tree.structure(quadratic.params)


def test_chain_rejects_a_foreign_state():
    with pytest.raises(ValueError, match="chain of 2 transformations got a state of length 1"):
        fo.chain(fo.scale(1.0), fo.scale(2.0)).update({"w": jnp.ones(1)}, (fo.EmptyState(),))


def test_add_decayed_weights_needs_params():
    tx = fo.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="needs params"):
        tx.update({"w": jnp.ones(1)}, tx.init({"w": jnp.ones(1)}))


def test_multi_transform_names_labels_without_a_transformation():
    tx = fo.multi_transform({"adam": fo.adam(0.1)}, {"w": "adam", "b": "frozen"})
    with pytest.raises(ValueError, match=r"labels \['frozen'\] have no transformation"):
        tx.init({"w": jnp.ones(1), "b": jnp.ones(1)})


def test_transforms_run_under_strict_dtype_and_rank_promotion(quadratic):
    grads = jax.tree.map(lambda p: 0.3 * p + 0.1, quadratic.params)
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        for fn_tx, *_ in (case for name, case in CASES.items() if not name.startswith("interop")):
            state = fn_tx.init(quadratic.params)
            for _ in range(2):
                updates, state = fn_tx.update(grads, state, quadratic.params)
            fo.apply_updates(quadratic.params, updates)


def test_state_keeps_its_dtypes_when_gradients_are_bfloat16(quadratic):
    """So a state can be a scan carry or a donated buffer whatever the gradients' dtype."""
    grads = jax.tree.map(lambda p: p.astype(jnp.bfloat16), quadratic.params)
    for fn_tx, *_ in (case for name, case in CASES.items() if not name.startswith("interop")):
        state = fn_tx.init(quadratic.params)
        _, new_state = fn_tx.update(grads, state, quadratic.params)
        assert jax.tree.map(jnp.result_type, new_state) == jax.tree.map(jnp.result_type, state)


BLOCKS = sorted({case.split("-")[0] for case in CASES if not case.startswith("interop")})


@pytest.mark.parametrize("name", BLOCKS)
def test_block_arguments_are_optax_arguments(name):
    """Each argument has optax's name, kind and default; optax may have more (e.g. Lion's mode).

    One deliberate difference: ``scale_by_learning_rate`` requires its learning rate. optax
    reads None as "no scaling, no sign flip", which is what makes its default adadelta ascend.
    """
    ours = inspect.signature(getattr(fo, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    for k, p in ours.items():
        if p.kind is inspect.Parameter.VAR_POSITIONAL or (name, k) == (
            "scale_by_learning_rate",
            "learning_rate",
        ):
            continue
        assert k in theirs, k
        assert (p.kind, p.default) == (theirs[k].kind, theirs[k].default), k


def test_every_block_and_combinator_has_a_case():
    modules = {"funcnets.optim.base", "funcnets.optim.transforms"}
    public = {
        name
        for name in fo.__all__
        if inspect.isfunction(obj := getattr(fo, name)) and obj.__module__ in modules
    }
    covered = {case.split("-")[0] for case in CASES} | {
        "apply_updates",  # test_apply_updates_keeps_the_parameter_dtype and every run
        "learning_rate",  # test_learning_rate_reads_the_rate_of_the_last_update
    }
    assert public <= covered, f"no test case for {sorted(public - covered)}"


def test_every_public_function_lives_in_a_covered_module():
    """Functions are covered per module: base and transforms here, alias and schedules
    in their own test files."""
    modules = {f"funcnets.optim.{m}" for m in ("base", "transforms", "alias", "schedules")}
    for name in fo.__all__:
        obj = getattr(fo, name)
        if inspect.isfunction(obj):
            assert obj.__module__ in modules, name


def test_learning_rate_reads_the_rate_of_the_last_update(quadratic):
    """adam(cosine schedule): after t updates the state holds schedule(t - 1), also under jit."""
    schedule = fo.cosine_decay_schedule(0.1, decay_steps=10)
    tx = fo.adam(schedule)
    grads = jax.tree.map(jnp.ones_like, quadratic.params)
    state = tx.init(quadratic.params)
    assert fo.learning_rate(state) == schedule(0)
    update = jax.jit(tx.update)
    for t in range(1, 5):
        _, state = update(grads, state, quadratic.params)
        rate = fo.learning_rate(state)
        assert rate.dtype == jnp.float32 and rate.shape == ()
        assert rate == pytest.approx(float(schedule(t - 1)), rel=1e-6), t
    assert fo.learning_rate(fo.adam(0.1).init(quadratic.params)) is None
    nested = fo.masked(fo.chain(fo.clip(1.0), tx), {"dense": True, "scale": False})
    assert fo.learning_rate(nested.init(quadratic.params)) == schedule(0)


# (call, argument): each is out of its argument's domain; see funcnets/optim/hyperparameters.py.
BAD_HYPERPARAMETERS = [
    ("sgd(-0.05)", "learning_rate"),
    ("sgd(float('nan'))", "learning_rate"),
    ("sgd(np.float32(-1))", "learning_rate"),
    ("sgd(0.1, momentum=1.0)", "momentum"),
    ("adam(0.01, b1=1.0)", "b1"),
    ("adam(0.01, b2=-0.1)", "b2"),
    ("adam(0.01, eps=-1e-8)", "eps"),
    ("adamw(0.01, weight_decay=-0.1)", "weight_decay"),
    ("nadam(float('inf'))", "learning_rate"),
    ("amsgrad(0.01, eps_root=-1.0)", "eps_root"),
    ("adamax(0.01, b2=1.0)", "b2"),
    ("rmsprop(0.01, decay=2)", "decay"),
    ("rmsprop(0.01, momentum=-0.5)", "momentum"),
    ("adagrad(0.01, initial_accumulator_value=-1.0)", "initial_accumulator_value"),
    ("adadelta(rho=1.5)", "rho"),
    ("lion(1e-4, b2=1.01)", "b2"),
    ("scale(float('nan'))", "step_size"),
    ("scale_by_learning_rate(-0.1)", "learning_rate"),
    ("trace(1.0)", "decay"),
    ("scale_by_adam(b1=1.0)", "b1"),
    ("scale_by_rms(decay=1.0)", "decay"),
    ("add_decayed_weights(-1e-4)", "weight_decay"),
    ("clip(0.0)", "max_delta"),
    ("clip_by_global_norm(-1.0)", "max_norm"),
]


@pytest.mark.parametrize(("call", "argument"), BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_raise_when_built(call, argument):
    name = call.split("(")[0]
    with pytest.raises(ValueError, match=rf"^{name}: {argument} must be .*, got "):
        eval(f"fo.{call}", {"fo": fo, "np": np})


def test_array_and_traced_hyperparameters_are_not_checked(quadratic, trees_close):
    """Arrays are how a sweep avoids recompiling: they pass through, traced or not."""
    grads = jax.tree.map(jnp.ones_like, quadratic.params)

    @jax.jit
    def step(lr, b1):
        tx = fo.adam(lr, b1=b1)
        return tx.update(grads, tx.init(quadratic.params))[0]

    updates = step(jnp.float32(0.1), jnp.float32(0.9))
    expected, _ = fo.adam(0.1).update(grads, fo.adam(0.1).init(quadratic.params))
    trees_close(updates, expected)
    for rate in (jnp.array(-0.1), 0.0):  # a concrete array is not checked either; 0 is allowed
        fo.sgd(rate)
