"""`rbm`: the Bernoulli-Bernoulli restricted Boltzmann machine.

Binary visible units ``v`` in ``{0, 1}^V`` and hidden units ``h`` in
``{0, 1}^H`` with energy and joint distribution

    E(v, h) = -b.v - c.h - v^T W h,        p(v, h) = exp(-E(v, h)) / Z.

Summing out ``h`` gives the free energy ``F(v) = -b.v - sum_j softplus(c_j +
(v W)_j)`` and ``p(v) = exp(-F(v)) / Z``; both conditionals factorise,
``p(h_j = 1 | v) = sigmoid(c_j + (v W)_j)`` and ``p(v_i = 1 | h) =
sigmoid(b_i + (W h)_i)``, so block Gibbs sampling alternates two layers.

The gradient of the negative log-likelihood is a difference of two
expectations of the free energy's gradient,

    d(-log p(v))/d(theta) = dF(v)/d(theta) - E_{v' ~ p}[dF(v')/d(theta)],

a positive phase on the data and a negative phase under the model.
Contrastive divergence CD-k (Hinton 2002) estimates the second term with
samples ``k`` Gibbs steps away from the data; persistent CD (Tieleman 2008)
continues a set of chains from one update to the next instead. The log
partition function ``log Z`` is estimated by annealed importance sampling
(Neal 2001) from a base-rate RBM, as in Salakhutdinov & Murray, "On the
quantitative analysis of deep belief networks", ICML 2008; small models get
it exactly by enumeration.

Params: ``{"w": (V, H), "visible_bias": (V,), "hidden_bias": (H,)}``; state:
``{"chains": (chains, V)}`` for persistent CD, else ``{}``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funcnets.train.inputs import check_int
from funcnets.train.state import TrainState, new_state
from funcnets.train.step import FINITE, Step, global_norm, guarded_update, step_key

Params = dict[str, jax.Array]

#: Largest ``min(visible, hidden)`` that `RBM.exact_log_partition` enumerates by default.
MAX_EXACT_UNITS = 24
_INNER_BITS = 12  # configurations enumerated at once: 2**12 per block of `exact_log_partition`
_BASE_RATE_CLIP = 1e-3  # data means are clipped to [1e-3, 1 - 1e-3] before the logit
_SM_SCHEDULE = (500, 4000, 10000)  # Salakhutdinov & Murray's steps in [0, .5), [.5, .9), [.9, 1]


def ais_schedule(steps: int) -> jax.Array:
    """``steps + 1`` inverse temperatures from 0 to 1, Salakhutdinov & Murray's shape.

    Their 14,500 steps are uniform with spacing 1e-3 on ``[0, 0.5)``, 1e-4 on
    ``[0.5, 0.9)`` and 1e-5 on ``[0.9, 1]``; other counts keep the three
    segments' shares (500 : 4,000 : 10,000) of the steps.

    Example:
        >>> from funcnets.models.rbm import ais_schedule
        >>> betas = ais_schedule(14500)
        >>> betas.shape, float(betas[500]), round(float(betas[4500]), 6), float(betas[-1])
        ((14501,), 0.5, 0.9, 1.0)
    """
    check_int(steps, "steps", 3)
    total = sum(_SM_SCHEDULE)
    first = max(1, round(steps * _SM_SCHEDULE[0] / total))
    second = max(1, round(steps * _SM_SCHEDULE[1] / total))
    third = steps - first - second
    return jnp.concatenate(
        [
            jnp.linspace(0.0, 0.5, first, endpoint=False),
            jnp.linspace(0.5, 0.9, second, endpoint=False),
            jnp.linspace(0.9, 1.0, third + 1),
        ]
    )


@jax.jit
def base_rate_bias(x: jax.Array) -> jax.Array:
    """Visible biases ``logit(mean(x))`` of the factorised model closest to the data, ``(V,)``.

    The mean over examples is clipped to ``[1e-3, 1 - 1e-3]`` so that pixels
    that are always off (or on) get a finite bias. These are the initial
    visible biases Hinton's practical guide (2010, section 8) recommends and
    the base-rate model of Salakhutdinov & Murray's AIS.

    Example:
        >>> import jax.numpy as jnp
        >>> from funcnets.models.rbm import base_rate_bias
        >>> base_rate_bias(jnp.array([[1.0, 0.0], [0.0, 0.0]])).round(2)
        Array([ 0.  , -6.91], dtype=float32)
    """
    x = jnp.asarray(x)
    mean = jnp.mean(x.reshape(x.shape[0], -1), axis=0)
    mean = jnp.clip(mean, _BASE_RATE_CLIP, 1 - _BASE_RATE_CLIP)
    return jnp.log(mean) - jnp.log1p(-mean)


def _bernoulli(key: jax.Array, p: jax.Array) -> jax.Array:
    """Binary samples with probabilities ``p``, in ``p``'s dtype."""
    return jax.random.bernoulli(key, p).astype(p.dtype)


def _below(u: jax.Array, p: jax.Array) -> jax.Array:
    """``1.0`` where ``u < p``, else ``0.0``: a Bernoulli sample from uniforms ``u``."""
    return (u < p).astype(p.dtype)


# The math, as functions of the params alone: compiled once per shape, shared by every
# model of that shape (CD-1, CD-k and PCD runs of one experiment compile them once).


def _free_energy(params: Params, v: jax.Array) -> jax.Array:
    pre = v @ params["w"] + params["hidden_bias"]
    return -(v @ params["visible_bias"]) - jnp.sum(jax.nn.softplus(pre), axis=-1)


_free_energy_jit = jax.jit(_free_energy)


def _hidden_probs(params: Params, v: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(v @ params["w"] + params["hidden_bias"])


def _visible_probs(params: Params, h: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(h @ params["w"].T + params["visible_bias"])


def _uniforms(key: jax.Array, i: jax.Array, v: jax.Array, hidden: int) -> jax.Array:
    """Gibbs step ``i``'s uniforms ``(..., H + V)``, hidden first.

    One draw per step rather than one per layer: it halves the compile time
    of a step on CPU (each random draw compiles its own hash).
    """
    shape = (*v.shape[:-1], hidden + v.shape[-1])
    return jax.random.uniform(jax.random.fold_in(key, i), shape, v.dtype)


@functools.partial(jax.jit, static_argnums=3)
def _gibbs(params: Params, key: jax.Array, v: jax.Array, steps: int) -> jax.Array:
    hidden = params["w"].shape[1]

    def one_step(v: jax.Array, i: jax.Array) -> tuple[jax.Array, None]:
        u = _uniforms(key, i, v, hidden)
        h = _below(u[..., :hidden], _hidden_probs(params, v))
        return _below(u[..., hidden:], _visible_probs(params, h)), None

    return lax.scan(one_step, v, jnp.arange(steps))[0]


@functools.partial(jax.jit, static_argnums=4)
def _contrastive_divergence(
    params: Params, key: jax.Array, v: jax.Array, start: jax.Array, k: int
) -> tuple[jax.Array, Params, jax.Array]:
    negatives = lax.stop_gradient(_gibbs(params, key, start, k))

    def surrogate(p: Params) -> jax.Array:
        return jnp.mean(_free_energy(p, v)) - jnp.mean(_free_energy(p, negatives))

    gap, grads = jax.value_and_grad(surrogate)(params)
    return gap, grads, negatives


def _reconstruction_error(params: Params, v: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(v - _visible_probs(params, _hidden_probs(params, v))))


@jax.jit
def _evaluate(params: Params, v: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
    n, visible = v.shape
    unit = jax.random.randint(key, (n,), 0, visible)
    rows = jnp.arange(n)
    flipped = v.at[rows, unit].set(1 - v[rows, unit])
    gain = _free_energy(params, flipped) - _free_energy(params, v)
    return {
        "reconstruction_error": _reconstruction_error(params, v),
        "pseudo_log_likelihood": visible * jnp.mean(jax.nn.log_sigmoid(gain)),
    }


@jax.jit
def _enumerate(params: Params) -> jax.Array:
    w, b, c = params["w"], params["visible_bias"], params["hidden_bias"]
    if w.shape[1] < w.shape[0]:  # the RBM is symmetric: enumerate h as if visible
        w, b, c = w.T, c, b
    units = w.shape[0]
    inner = min(units, _INNER_BITS)
    low = (jnp.arange(2**inner)[:, None] >> jnp.arange(inner)) & 1

    def block(i: jax.Array) -> jax.Array:
        high = (i >> jnp.arange(units - inner)) & 1
        s = jnp.concatenate([low, jnp.broadcast_to(high, (2**inner, units - inner))], axis=1)
        s = s.astype(w.dtype)
        return jax.nn.logsumexp(s @ b + jnp.sum(jax.nn.softplus(s @ w + c), axis=-1))

    return jax.nn.logsumexp(lax.map(block, jnp.arange(2 ** (units - inner))))


@functools.partial(jax.jit, static_argnums=4)
def _anneal(
    params: Params, key: jax.Array, base: jax.Array, betas: jax.Array, runs: int
) -> tuple[jax.Array, jax.Array]:
    w, b, c = params["w"], params["visible_bias"], params["hidden_bias"]
    visible, hidden = w.shape

    def anneal(carry: tuple[jax.Array, jax.Array], xs: tuple) -> tuple[tuple, None]:
        v, log_w = carry
        previous, beta, i = xs
        pre = v @ w + c
        log_w = log_w + (beta - previous) * (v @ (b - base))
        log_w = log_w + jnp.sum(
            jax.nn.softplus(beta * pre) - jax.nn.softplus(previous * pre), axis=-1
        )
        u = _uniforms(key, i, v, hidden)
        h = _below(u[..., :hidden], jax.nn.sigmoid(beta * pre))
        v = _below(u[..., hidden:], jax.nn.sigmoid((1 - beta) * base + beta * (b + h @ w.T)))
        return (v, log_w), None

    # A first step from beta = 0 to itself adds no weight, and its transition draws v
    # exactly from the base model (whatever v was): each run starts from an exact sample.
    previous = jnp.concatenate([betas[:1], betas[:-1]])
    start = jnp.zeros((runs, visible), b.dtype), jnp.zeros(runs, b.dtype)
    (_, log_w), _ = lax.scan(anneal, start, (previous, betas, jnp.arange(betas.shape[0])))
    log_z_base = jnp.sum(jax.nn.softplus(base)) + hidden * jnp.log(2.0).astype(b.dtype)
    log_z = log_z_base + jax.nn.logsumexp(log_w) - jnp.log(runs).astype(b.dtype)
    ratio = jnp.exp(log_w - jnp.max(log_w))
    spread = 3 * jnp.std(ratio) / (jnp.mean(ratio) * np.sqrt(runs))
    return log_z, spread


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _draw(
    key: jax.Array, visible_bias: jax.Array, hidden: int, chains: int, init_scale: float
) -> tuple[Params, jax.Array, jax.Array]:
    """`RBM.init`'s params, ``chains`` chains at the base rates, and the run's key."""
    weight_key, chain_key, run_key = jax.random.split(key, 3)
    params = {
        "w": init_scale * jax.random.normal(weight_key, (visible_bias.shape[0], hidden)),
        "visible_bias": visible_bias,
        "hidden_bias": jnp.zeros(hidden),
    }
    marginal = jnp.broadcast_to(jax.nn.sigmoid(visible_bias), (chains, visible_bias.shape[0]))
    return params, _bernoulli(chain_key, marginal), run_key


@dataclasses.dataclass(frozen=True)
class RBM:
    """A Bernoulli-Bernoulli RBM and its training step; made by `rbm`, which documents it."""

    visible: int
    hidden: int
    k: int = 1
    persistent: bool = False
    chains: int = 100
    init_scale: float = 0.01

    # -- the model -------------------------------------------------------------------------

    def free_energy(self, params: Params, v: jax.Array) -> jax.Array:
        """``F(v) = -b.v - sum_j softplus(c_j + (v W)_j)`` for ``v`` of shape ``(..., V)``.

        Returns shape ``(...)``; ``p(v) = exp(-F(v)) / Z``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(3, 2)
            >>> params = {"w": jnp.zeros((3, 2)), "visible_bias": jnp.ones(3),
            ...           "hidden_bias": jnp.zeros(2)}
            >>> round(float(model.free_energy(params, jnp.array([1.0, 0.0, 1.0]))), 3)
            -3.386
        """
        return _free_energy_jit(params, v)

    def hidden_probs(self, params: Params, v: jax.Array) -> jax.Array:
        """``p(h_j = 1 | v) = sigmoid(c + v W)``: ``(..., V) -> (..., H)``.

        Example:
            >>> import jax.numpy as jnp
            >>> from funcnets.models.rbm import rbm
            >>> params = {"w": jnp.zeros((4, 3)), "visible_bias": jnp.zeros(4),
            ...           "hidden_bias": jnp.zeros(3)}
            >>> rbm(4, 3).hidden_probs(params, jnp.ones((8, 4))).shape
            (8, 3)
        """
        return _hidden_probs(params, v)

    def visible_probs(self, params: Params, h: jax.Array) -> jax.Array:
        """``p(v_i = 1 | h) = sigmoid(b + W h)``: ``(..., H) -> (..., V)``.

        Example:
            >>> import jax.numpy as jnp
            >>> from funcnets.models.rbm import rbm
            >>> params = {"w": jnp.zeros((4, 3)), "visible_bias": jnp.zeros(4),
            ...           "hidden_bias": jnp.zeros(3)}
            >>> rbm(4, 3).visible_probs(params, jnp.ones((8, 3)))[0]  # sigmoid(0)
            Array([0.5, 0.5, 0.5, 0.5], dtype=float32)
        """
        return _visible_probs(params, h)

    def gibbs(self, params: Params, key: jax.Array, v: jax.Array, steps: int) -> jax.Array:
        """``steps`` steps of block Gibbs sampling from ``v``: ``h ~ p(h | v)``, ``v ~ p(v | h)``.

        ``v`` is ``(..., V)`` (any number of independent chains); returns the
        binary visible states after ``steps`` steps, same shape. Step ``i``
        draws with ``fold_in(key, i)``; the steps are one ``lax.scan``, so
        ``steps`` is a Python int (0 returns ``v``).

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(6, 4)
            >>> ts = model.init(jax.random.key(0), (5, 6), fn.optim.sgd(0.1))
            >>> v = model.gibbs(ts.params, jax.random.key(1), jnp.zeros((5, 6)), steps=10)
            >>> v.shape, bool(jnp.all((v == 0) | (v == 1)))
            ((5, 6), True)
        """
        check_int(steps, "steps", 0)
        return _gibbs(params, key, v, steps)

    # -- learning --------------------------------------------------------------------------

    def contrastive_divergence(
        self, params: Params, key: jax.Array, v: jax.Array, start: jax.Array | None = None
    ) -> tuple[jax.Array, Params, jax.Array]:
        """The CD-k (or PCD) estimate of the gradient of ``-mean log p(v)``.

        The negatives are ``k`` Gibbs steps from ``start`` (default: the data
        ``v``, CD-k; the persistent chains for PCD). The estimate is the
        gradient of the surrogate ``gap = mean F(v) - mean F(negatives)``
        with the negatives held fixed: ``mean dF(v) - mean dF(negatives)``,
        whose weight part is ``-(<v p(h|v)^T>_data - <v p(h|v)^T>_negatives)``.

        Args:
            params: the RBM's params.
            key: the randomness of the Gibbs steps.
            v: data, ``(batch, V)``.
            start: ``(chains, V)`` states to sample the negatives from, or None.

        Returns:
            ``(gap, grads, negatives)``: the surrogate's value, its gradient
            (a pytree like ``params``) and the negatives ``(chains, V)``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(6, 4, k=2)
            >>> ts = model.init(jax.random.key(0), (5, 6), fn.optim.sgd(0.1))
            >>> gap, grads, neg = model.contrastive_divergence(
            ...     ts.params, jax.random.key(1), jnp.ones((5, 6)))
            >>> grads["w"].shape, neg.shape
            ((6, 4), (5, 6))
        """
        return _contrastive_divergence(params, key, v, v if start is None else start, self.k)

    def reconstruction_error(self, params: Params, v: jax.Array) -> jax.Array:
        """Mean squared error of the mean-field reconstruction ``p(v | h = p(h | v))``.

        Averaged over examples and visible units; a monitor of training, not
        of the likelihood.

        Example:
            >>> import jax.numpy as jnp
            >>> from funcnets.models.rbm import rbm
            >>> params = {"w": jnp.zeros((4, 3)), "visible_bias": jnp.zeros(4),
            ...           "hidden_bias": jnp.zeros(3)}
            >>> float(rbm(4, 3).reconstruction_error(params, jnp.ones((2, 4))))  # (1 - 0.5)^2
            0.25
        """
        return _reconstruction_error(params, v)

    def _flat(self, x: jax.Array) -> jax.Array:
        """A batch ``(batch, ...)`` as ``(batch, V)``."""
        return jnp.reshape(x, (x.shape[0], self.visible))

    def init(
        self,
        key: jax.Array,
        input_shape: tuple[int, ...],
        optimizer: Any,
        *,
        data: jax.Array | None = None,
    ) -> TrainState:
        """A fresh `TrainState` for batches of ``input_shape`` (batch first, ``V`` values each).

        ``w ~ N(0, init_scale^2)``, hidden biases 0, visible biases 0 or, given
        ``data`` (examples ``(N, ...)``), ``base_rate_bias(data)``. For
        persistent CD the state holds ``chains`` chains of independent pixels
        ``v_i ~ sigmoid(visible_bias_i)``, the initial model's marginal had it
        no weights.
        ``key`` is split three ways: weights, chains and the run's key.

        Example:
            >>> import jax, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(6, 4, persistent=True, chains=8)
            >>> ts = model.init(jax.random.key(0), (5, 2, 3), fn.optim.sgd(0.1))
            >>> jax.tree.map(jax.numpy.shape, (ts.params, ts.state))
            ({'hidden_bias': (4,), 'visible_bias': (6,), 'w': (6, 4)}, {'chains': (8, 6)})
        """
        if len(input_shape) < 2 or math.prod(input_shape[1:]) != self.visible:
            raise ValueError(
                f"input_shape must be (batch, ...) with {self.visible} values per example, "
                f"got {tuple(input_shape)}"
            )
        visible_bias = jnp.zeros(self.visible) if data is None else base_rate_bias(data)
        count = self.chains if self.persistent else 0
        params, chains, run_key = _draw(key, visible_bias, self.hidden, count, self.init_scale)
        state = {"chains": chains} if self.persistent else {}
        return new_state(params, state, optimizer.init(params), run_key)

    def step(self, optimizer: Any) -> Step:
        """The pure CD-k / PCD step ``(ts, batch) -> (ts, metrics)`` for `fn.train.run`.

        ``batch`` is ``(batch, ...)`` examples in ``[0, 1]`` (binary data;
        probabilities are used as they are, as mean-field values). The step
        draws the negatives with ``fn.train.step_key(ts)``, applies the
        gradient estimate of `contrastive_divergence` with
        ``fn.train.guarded_update`` and, for PCD, keeps the negatives as the
        next step's chains (unchanged when the update is rejected).

        Metrics: ``reconstruction_error`` (see `reconstruction_error`),
        ``free_energy`` (mean ``F`` of the batch), ``free_energy_gap`` (the
        surrogate ``mean F(data) - mean F(negatives)``), ``grad_norm`` and
        ``finite``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model, opt = rbm(6, 4, persistent=True, chains=8), fn.optim.sgd(0.1)
            >>> ts = model.init(jax.random.key(0), (5, 6), opt)
            >>> ts, metrics = jax.jit(model.step(opt))(ts, jnp.ones((5, 6)))
            >>> sorted(metrics)
            ['finite', 'free_energy', 'free_energy_gap', 'grad_norm', 'reconstruction_error']
        """

        def step(ts: TrainState, batch: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
            v = self._flat(batch)
            start = ts.state["chains"] if self.persistent else v
            key = step_key(ts)
            gap, grads, negatives = _contrastive_divergence(ts.params, key, v, start, self.k)
            params, opt_state, finite = guarded_update(
                optimizer, grads, ts.opt_state, ts.params, gap
            )
            state = {"chains": jnp.where(finite, negatives, start)} if self.persistent else {}
            metrics = {
                "reconstruction_error": _reconstruction_error(ts.params, v),
                "free_energy": jnp.mean(_free_energy(ts.params, v)),
                "free_energy_gap": gap,
                "grad_norm": global_norm(grads),
                FINITE: finite,
            }
            new = ts._replace(params=params, state=state, opt_state=opt_state, step=ts.step + 1)
            return new, metrics

        return step

    def evaluate(self, ts: TrainState, x: jax.Array, key: jax.Array) -> dict[str, float]:
        """Cheap numbers on held-out ``x`` ``(N, ...)``; for the likelihood see `ais_log_partition`.

        ``reconstruction_error`` (lower is better) and
        ``pseudo_log_likelihood`` (nats per example, higher is better):
        ``V * log sigmoid(F(v~) - F(v))`` with ``v~`` the example with one
        visible unit, drawn from ``key``, flipped; an unbiased estimate of
        ``sum_i log p(v_i | v_-i)`` (Besag 1975).

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(6, 4)
            >>> ts = model.init(jax.random.key(0), (5, 6), fn.optim.sgd(0.1))
            >>> sorted(model.evaluate(ts, jnp.ones((5, 6)), jax.random.key(1)))
            ['pseudo_log_likelihood', 'reconstruction_error']
        """
        values = _evaluate(ts.params, self._flat(jnp.asarray(x)), key)
        return {name: float(value) for name, value in values.items()}

    # -- the partition function -----------------------------------------------------------

    def exact_log_partition(self, params: Params, *, max_units: int = MAX_EXACT_UNITS) -> jax.Array:
        """``log Z`` by enumerating the ``2^min(V, H)`` states of the smaller layer.

        With ``H <= V``: ``log Z = logsumexp_h [c.h + sum_i softplus(b_i + (W h)_i)]``
        (and symmetrically over ``v``), in blocks of ``2^12`` states under
        ``lax.map``. Differentiable, so ``grad(mean F(v) + log Z)`` is the
        exact gradient of ``-mean log p(v)``.

        Raises:
            ValueError: when ``min(V, H) > max_units``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(100, 3)
            >>> params = {"w": jnp.zeros((100, 3)), "visible_bias": jnp.zeros(100),
            ...           "hidden_bias": jnp.zeros(3)}
            >>> round(float(model.exact_log_partition(params) / jnp.log(2.0)), 3)  # 2^103 states
            103.0
        """
        units = min(self.visible, self.hidden)
        if units > max_units:
            raise ValueError(
                f"exact_log_partition enumerates 2^min(visible, hidden) = 2^{units} states, more "
                f"than max_units = {max_units} allows; use ais_log_partition"
            )
        return _enumerate(params)

    def ais_log_partition(
        self,
        params: Params,
        key: jax.Array,
        *,
        runs: int,
        betas: int | jax.Array,
        data: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """``log Z`` by annealed importance sampling (Salakhutdinov & Murray 2008).

        The base model ``A`` has no weights and visible biases ``b_A =
        base_rate_bias(data)`` (0 without ``data``), so ``log Z_A = sum_i
        softplus(b_A,i) + H log 2`` and exact samples are independent pixels.
        The intermediate distributions, for ``beta`` from 0 to 1, are

            log p*_beta(v) = (1 - beta) b_A.v + beta b.v + sum_j softplus(beta (c + v W)_j),

        each an RBM with weights ``beta W``, sampled by one Gibbs step
        (``h ~ sigmoid(beta (c + v W))``, ``v ~ sigmoid((1 - beta) b_A + beta
        (b + W h))``). Each run ``r`` starts from an exact sample of ``A`` and
        accumulates ``log w_r = sum_k log p*_{beta_k}(v_k) - log
        p*_{beta_{k-1}}(v_k)``; the runs are rows of one batch (the
        equivalent of ``vmap`` over runs) in one ``lax.scan`` over ``beta``.

        Args:
            params: the RBM's params.
            key: the randomness of the runs.
            runs: independent annealing runs (a Python int).
            betas: the number of steps (Python int; `ais_schedule`) or the
                inverse temperatures themselves, increasing from 0 to 1.
            data: examples ``(N, ...)`` setting the base rates, or None.

        Returns:
            ``(log_z, spread)``: ``log Z_A + log mean_r w_r`` and three
            standard errors of it (``3 std(w) / (mean(w) sqrt(runs))``, the
            first-order width of Salakhutdinov & Murray's ``log(Z +- 3 sigma)``).
            ``E[w] = Z / Z_A``, so ``Z`` is unbiased and ``log Z``, by Jensen's
            inequality, underestimated in expectation: likelihoods computed
            from it err on the optimistic side.

        Example:
            >>> import jax, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(6, 4)
            >>> ts = model.init(jax.random.key(0), (5, 6), fn.optim.sgd(0.1))
            >>> log_z, spread = model.ais_log_partition(ts.params, jax.random.key(1),
            ...                                         runs=64, betas=200)
            >>> bool(abs(log_z - model.exact_log_partition(ts.params)) < 0.05)
            True
        """
        check_int(runs, "runs", 1)
        b = params["visible_bias"]
        base = jnp.zeros_like(b) if data is None else base_rate_bias(data).astype(b.dtype)
        if isinstance(betas, int):
            betas = ais_schedule(betas)
        betas = jnp.asarray(betas, b.dtype)
        if betas.ndim != 1 or betas.shape[0] < 2:
            raise ValueError(f"betas must be an int or a 1-D array from 0 to 1, got {betas.shape}")
        return _anneal(params, key, base, betas, runs)

    def log_likelihood(self, params: Params, x: jax.Array, log_z: jax.Array) -> jax.Array:
        """Mean ``log p(v) = -F(v) - log Z`` over examples ``x`` ``(N, ...)``, in nats.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> from funcnets.models.rbm import rbm
            >>> model = rbm(4, 2)
            >>> params = {"w": jnp.zeros((4, 2)), "visible_bias": jnp.zeros(4),
            ...           "hidden_bias": jnp.zeros(2)}  # uniform over the 2^4 states
            >>> log_p = model.log_likelihood(params, jnp.ones((3, 4)), jnp.log(2.0**6))
            >>> round(float(log_p / jnp.log(2.0)), 4)
            -4.0
        """
        x = jnp.asarray(x)
        return -jnp.mean(_free_energy_jit(params, self._flat(x))) - log_z


def rbm(
    visible: int,
    hidden: int,
    *,
    k: int = 1,
    persistent: bool = False,
    chains: int = 100,
    init_scale: float = 0.01,
) -> RBM:
    """A Bernoulli-Bernoulli RBM trained by CD-k or persistent CD; see the module docstring.

    Returns an `RBM`, which follows the `Trainable` protocol
    (funcnets/models/trainable.py): ``init(key, input_shape, optimizer, *,
    data=None)``, ``step(optimizer)``, ``evaluate(ts, x, key)``; plus the
    model's functions (``free_energy``, ``gibbs``,
    ``contrastive_divergence``, ``exact_log_partition``,
    ``ais_log_partition``, ``log_likelihood``, ...).

    Args:
        visible: ``V``, values per example (784 for MNIST; inputs are flattened).
        hidden: ``H``, hidden units.
        k: Gibbs steps per negative phase (CD-k; PCD-k when persistent).
        persistent: continue the negative chains across updates (Tieleman
            2008) instead of restarting them at the data; the chains live in
            ``ts.state["chains"]``, so a checkpoint resumes them exactly.
        chains: the number of persistent chains (PCD only).
        init_scale: the standard deviation of the initial weights (Hinton's
            guide: 0.01).

    Weight decay and momentum belong to the optimizer, e.g.
    ``fn.optim.chain(fn.optim.add_decayed_weights(2e-4, mask={"w": True,
    "visible_bias": False, "hidden_bias": False}), fn.optim.sgd(0.05,
    momentum=0.9))``.

    Example:
        >>> from funcnets.models.rbm import rbm
        >>> rbm(784, 500, k=25)
        RBM(visible=784, hidden=500, k=25, persistent=False, chains=100, init_scale=0.01)
    """
    check_int(visible, "visible", 1)
    check_int(hidden, "hidden", 1)
    check_int(k, "k", 1)
    check_int(chains, "chains", 1)
    if not isinstance(persistent, bool):
        raise ValueError(f"persistent must be a bool, got {persistent!r}")
    if not init_scale >= 0:
        raise ValueError(f"init_scale must be >= 0, got {init_scale!r}")
    return RBM(visible, hidden, k, persistent, chains, float(init_scale))
