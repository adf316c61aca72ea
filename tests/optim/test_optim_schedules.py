"""Every schedule against optax's at every step, from 0 to well past its end.

Jitted, the values are bit-identical to optax's; eagerly, equal to float32 rounding.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funcnets.optim as fo

CASES = {
    "constant_schedule": [lambda m: m.constant_schedule(0.01)],
    "linear_schedule": [
        lambda m: m.linear_schedule(0.1, 0.001, 100),
        lambda m: m.linear_schedule(0.0, 1.0, 50, transition_begin=20),
        lambda m: m.linear_schedule(0.3, 0.1, 0),
    ],
    "piecewise_constant_schedule": [
        lambda m: m.piecewise_constant_schedule(0.1, {60: 0.1, 30: 0.5, 90: 2.0}),
        lambda m: m.piecewise_constant_schedule(0.1, {0: 0.5, 10: 0.0}),
        lambda m: m.piecewise_constant_schedule(0.1),
    ],
    "exponential_decay": [
        lambda m: m.exponential_decay(0.1, 10, 0.5),
        lambda m: m.exponential_decay(0.1, 10, 0.5, transition_begin=15, staircase=True),
        lambda m: m.exponential_decay(0.1, 7, 0.8, end_value=0.02),
        lambda m: m.exponential_decay(0.1, 10, 1.5, staircase=True, end_value=0.5),
        lambda m: m.exponential_decay(0.1, 0, 0.5),
    ],
    "cosine_decay_schedule": [
        lambda m: m.cosine_decay_schedule(0.1, 100),
        lambda m: m.cosine_decay_schedule(0.1, 77, alpha=0.1, exponent=2.0),
    ],
    "warmup_cosine_decay_schedule": [
        lambda m: m.warmup_cosine_decay_schedule(0.0, 0.1, 10, 100),
        lambda m: m.warmup_cosine_decay_schedule(0.01, 0.1, 25, 80, end_value=0.001, exponent=1.5),
        lambda m: m.warmup_cosine_decay_schedule(0.05, 0.1, 0, 60, end_value=0.02),
    ],
}
STEPS = jnp.arange(0, 200, dtype=jnp.int32)  # every case ends by step 100


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(b, id=f"{name}-{i}")
        for name, builds in CASES.items()
        for i, b in enumerate(builds)
    ],
)
def test_equals_optax_at_every_step(build):
    ours, theirs = build(fo), build(optax)
    got, want = (jax.jit(jax.vmap(s))(STEPS) for s in (ours, theirs))
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(got, want)  # jitted: the same float32 values
    # Eagerly, one scalar count at a time (optax returns some constants as Python floats).
    for step in (0, 1, 10, 30, 99, 100, 199):
        count = jnp.asarray(step, jnp.int32)
        np.testing.assert_allclose(ours(count), theirs(count), rtol=1e-6, atol=1e-9)


def test_boundaries():
    """Where the conventions could differ by one step."""
    piecewise = fo.piecewise_constant_schedule(1.0, {10: 0.5})
    assert piecewise(jnp.int32(9)) == 1.0 and piecewise(jnp.int32(10)) == 0.5
    linear = fo.linear_schedule(1.0, 0.25, 10, transition_begin=5)
    assert linear(jnp.int32(5)) == 1.0 and linear(jnp.int32(15)) == 0.25
    stairs = fo.exponential_decay(1.0, 10, 0.5, staircase=True)
    assert stairs(jnp.int32(9)) == 1.0 and stairs(jnp.int32(10)) == 0.5
    warmup = fo.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110, end_value=0.1)
    assert warmup(jnp.int32(0)) == 0.0 and warmup(jnp.int32(10)) == 1.0
    np.testing.assert_allclose(warmup(jnp.int32(110)), 0.1, rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: fo.linear_schedule(1.0, 0.0, 10, transition_begin=-1), "transition_begin"),
        (lambda: fo.exponential_decay(1.0, 10, 0.0), "decay_rate"),
        (lambda: fo.exponential_decay(1.0, 10, 0.5, transition_begin=-2), "transition_begin"),
        (lambda: fo.piecewise_constant_schedule(1.0, {5: -0.5}), "scales"),
        (lambda: fo.cosine_decay_schedule(1.0, 0), "decay_steps"),
        (lambda: fo.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10), "decay_steps"),
    ],
)
def test_invalid_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_every_schedule_has_a_case():
    schedules = {
        name
        for name in fo.__all__
        if inspect.isfunction(obj := getattr(fo, name))
        and obj.__module__ == "funcnets.optim.schedules"
    }
    assert schedules == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_signature_matches_optax(name):
    ours = inspect.signature(getattr(fo, name)).parameters
    theirs = inspect.signature(getattr(optax, name)).parameters
    assert list(ours) == list(theirs)
    for k, p in ours.items():
        assert (p.kind, p.default) == (theirs[k].kind, theirs[k].default), k
