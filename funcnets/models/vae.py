"""The variational autoencoder (Kingma & Welling 2014) and its importance-sampled likelihood.

A VAE is a latent-variable model ``p(x) = ∫ p(x | z) p(z) dz`` with a standard
normal prior ``p(z) = N(0, I)`` over ``latent`` dimensions, a decoder MLP
giving ``p(x | z)`` (independent Bernoulli pixels, or a diagonal Gaussian), and
an encoder MLP giving the approximate posterior ``q(z | x) = N(μ(x),
diag σ²(x))``. Both are trained together by maximising the evidence lower
bound (ELBO, Kingma & Welling 2014, eq. 10)::

    log p(x) ≥ ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) ‖ p(z)),

with one reparameterised sample ``z = μ + σ ⊙ ε``, ``ε ~ N(0, I)`` drawn from
an explicit key, and the KL term in closed form
``½ Σ_j (μ_j² + σ_j² - 1 - log σ_j²)``.

The test log-likelihood is estimated by importance sampling with ``q`` as the
proposal (Burda, Grosse & Salakhutdinov 2015, "Importance Weighted
Autoencoders", eq. 8)::

    log p̂_k(x) = logsumexp_i [log p(x, z_i) - log q(z_i | x)] - log k,   z_i ~ q(z | x),

whose expectation ``L_k`` satisfies ``ELBO = L_1 ≤ L_k ≤ L_{k+1} ≤ log p(x)``
and tends to ``log p(x)`` as ``k`` grows (their Theorem 1); the paper reports
``k = 5000``.

`vae` returns a `VAE`, which follows the `Trainable` protocol
(funcnets/models/trainable.py): ``init``, ``step`` and ``evaluate``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from funcnets.activations import softplus
from funcnets.layers import Layer
from funcnets.models.mlp import mlp
from funcnets.train.state import TrainState, new_state
from funcnets.train.step import Step, objective_step

_DECODERS = ("bernoulli", "gaussian")
_LOG_2PI = math.log(2 * math.pi)


def binarize(key: jax.Array, x: jax.Array) -> jax.Array:
    """Draws binary images ``b ~ Bernoulli(x)``, one independent draw per pixel.

    Dynamic binarization (Salakhutdinov & Murray 2008; Burda et al. 2015):
    grey levels ``x ∈ [0, 1]`` are read as the probability that a pixel is on.
    Binary inputs come back unchanged.

    Args:
        key: the draw's key.
        x: intensities in ``[0, 1]``, any shape.

    Returns:
        An array of ``x``'s shape and dtype holding 0 and 1.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> binarize(jax.random.key(0), jnp.array([0.0, 1.0, 1.0]))
        Array([0., 1., 1.], dtype=float32)
    """
    x = jnp.asarray(x)
    return jax.random.bernoulli(key, x).astype(x.dtype)


def _normal_log_density(eps: jax.Array, log_var: jax.Array | float = 0.0) -> jax.Array:
    """``log N(z; μ, σ²)`` summed over the last axis, given ``ε = (z - μ) / σ`` and ``log σ²``."""
    return -0.5 * jnp.sum(_LOG_2PI + log_var + jnp.square(eps), axis=-1)


@dataclasses.dataclass(frozen=True)
class VAE:
    """A variational autoencoder: encoder and decoder MLPs, their ELBO and likelihood.

    Made by `vae`. Params and state are ``{"encoder": ..., "decoder": ...}``,
    each an `mlp`'s. Examples ``x`` have shape ``(batch, ...)`` and are
    flattened to ``(batch, features)``: `decode` and `sample` return flat
    vectors, to be reshaped as the data.

    Attributes:
        latent: the number of latent dimensions.
        hidden: the hidden widths of the encoder; the decoder mirrors them.
        decoder: ``"bernoulli"`` (logits out) or ``"gaussian"`` (mean and log-variance out).
        activation: the hidden units' nonlinearity.
        binarize: whether training and `evaluate` read grey levels as Bernoulli
            probabilities and draw binary examples (dynamic binarization).
    """

    latent: int
    hidden: tuple[int, ...]
    decoder: str
    activation: Callable[[jax.Array], jax.Array]
    binarize: bool

    # -- the two networks --------------------------------------------------------------

    def encoder_net(self) -> Layer:
        """``x -> [μ, log σ²]``: an `mlp` with ``2 * latent`` outputs.

        Example:
            >>> import jax
            >>> vae(2, hidden=(8,)).encoder_net().init(jax.random.key(0), (5, 4))[0]
            (5, 4)
        """
        return mlp([*self.hidden, 2 * self.latent], self.activation)

    def decoder_net(self, features: int) -> Layer:
        """``z -> logits`` (``features`` of them) or ``[mean, log-variance]`` (``2 * features``).

        Example:
            >>> import jax
            >>> net = vae(2, hidden=(8,), decoder="gaussian").decoder_net(4)
            >>> net.init(jax.random.key(0), (5, 2))[0]
            (5, 8)
        """
        width = features * (2 if self.decoder == "gaussian" else 1)
        return mlp([*reversed(self.hidden), width], self.activation)

    def _decoded(self, params: Any, state: Any, z: jax.Array) -> jax.Array:
        """The decoder's raw outputs for ``z`` (batch, latent); their width is read from params."""
        width = params["decoder"][f"dense{len(self.hidden)}"]["b"].shape[-1]
        features = width // 2 if self.decoder == "gaussian" else width
        out, _ = self.decoder_net(features).apply(params["decoder"], state["decoder"], z)
        return out

    def _log_px_given_z(self, params: Any, state: Any, z: jax.Array, x: jax.Array) -> jax.Array:
        """``log p(x | z)`` per example: ``z`` (batch, latent), ``x`` (batch, features)."""
        out = self._decoded(params, state, z)
        if self.decoder == "bernoulli":  # x log σ(l) + (1 - x) log σ(-l) = x l - softplus(l)
            return jnp.sum(x * out - jax.nn.softplus(out), axis=-1)
        mean, log_var = jnp.split(out, 2, axis=-1)
        return _normal_log_density((x - mean) * jnp.exp(-0.5 * log_var), log_var)

    # -- the model's functions ---------------------------------------------------------

    def init(self, key: jax.Array, input_shape: tuple[int, ...], optimizer: Any) -> TrainState:
        """A fresh `TrainState` for examples of ``input_shape`` (batch included).

        Example:
            >>> import jax, funcnets as fn
            >>> ts = vae(2, hidden=(8,)).init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> jax.tree.map(jax.numpy.shape, ts.params["decoder"]["dense1"])
            {'b': (4,), 'w': (8, 4)}
        """
        if len(input_shape) < 2:
            raise ValueError(f"input_shape must be (batch, ...), got {input_shape}")
        features = math.prod(input_shape[1:])
        encoder_key, decoder_key, run_key = jax.random.split(key, 3)
        _, encoder, encoder_state = self.encoder_net().init(encoder_key, tuple(input_shape))
        _, decoder, decoder_state = self.decoder_net(features).init(
            decoder_key, (input_shape[0], self.latent)
        )
        params = {"encoder": encoder, "decoder": decoder}
        state = {"encoder": encoder_state, "decoder": decoder_state}
        return new_state(params, state, optimizer.init(params), run_key)

    def encode(self, params: Any, state: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The posterior ``q(z | x)``: ``(μ, log σ²)``, each (batch, latent), of ``x`` (batch, ...).

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> [a.shape for a in model.encode(ts.params, ts.state, jnp.ones((5, 4)))]
            [(5, 2), (5, 2)]
        """
        out, _ = self.encoder_net().apply(params["encoder"], state["encoder"], x)
        mean, log_var = jnp.split(out, 2, axis=-1)
        return mean, log_var

    def decode(self, params: Any, state: Any, z: jax.Array) -> jax.Array:
        """The mean of ``p(x | z)`` (Bernoulli: the pixel probabilities), (batch, features).

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> model.decode(ts.params, ts.state, jnp.zeros((3, 2))).shape
            (3, 4)
        """
        out = self._decoded(params, state, z)
        if self.decoder == "bernoulli":
            return jax.nn.sigmoid(out)
        return jnp.split(out, 2, axis=-1)[0]

    def sample(
        self, params: Any, state: Any, key: jax.Array, n: int, *, mean: bool = False
    ) -> jax.Array:
        """``n`` draws from the model, ``z ~ N(0, I)`` then ``x ~ p(x | z)``: (n, features).

        With ``mean=True``, ``E[x | z]`` for each ``z`` instead of a draw (the
        grey-level pictures usually shown for a Bernoulli decoder).

        Example:
            >>> import jax, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> model.sample(ts.params, ts.state, jax.random.key(1), 7).shape
            (7, 4)
        """
        z_key, x_key = jax.random.split(key)
        out = self._decoded(params, state, jax.random.normal(z_key, (n, self.latent)))
        if self.decoder == "bernoulli":
            probs = jax.nn.sigmoid(out)
            return probs if mean else jax.random.bernoulli(x_key, probs).astype(probs.dtype)
        center, log_var = jnp.split(out, 2, axis=-1)
        if mean:
            return center
        return center + jnp.exp(0.5 * log_var) * jax.random.normal(x_key, center.shape)

    def elbo_terms(
        self, params: Any, state: Any, x: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``(log p(x | z), KL(q(z | x) ‖ p(z)))`` per example, each (batch,), in nats.

        ``z = μ + σ ⊙ ε`` with ``ε ~ N(0, I)`` drawn from ``key`` (one sample
        per example); the KL term is exact. The ELBO is their difference.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> x = jnp.ones((5, 4))
            >>> log_px, kl = model.elbo_terms(ts.params, ts.state, x, jax.random.key(1))
            >>> log_px.shape, bool(jnp.all(kl >= 0))
            ((5,), True)
        """
        mean, log_var = self.encode(params, state, x)
        z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
        log_px = self._log_px_given_z(params, state, z, x.reshape(x.shape[0], -1))
        kl = 0.5 * jnp.sum(jnp.square(mean) + jnp.exp(log_var) - 1.0 - log_var, axis=-1)
        return log_px, kl

    def elbo(self, params: Any, state: Any, x: jax.Array, key: jax.Array) -> jax.Array:
        """The evidence lower bound ``E_q[log p(x | z)] - KL(q ‖ p)`` per example, (batch,), nats.

        A one-sample estimate (see `elbo_terms`); ``x`` is used as given (binarize it first).

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> model.elbo(ts.params, ts.state, jnp.ones((5, 4)), jax.random.key(1)).shape
            (5,)
        """
        log_px, kl = self.elbo_terms(params, state, x, key)
        return log_px - kl

    def log_likelihood(
        self,
        params: Any,
        state: Any,
        x: jax.Array,
        key: jax.Array,
        k: int = 5000,
        chunk: int = 500,
        batch_size: int = 100,
    ) -> jax.Array:
        """Importance-sampling estimates ``log p̂_k(x)`` per example, (batch,), in nats.

        ``log p̂_k(x) = logsumexp_i [log p(x | z_i) + log p(z_i) - log q(z_i | x)]
        - log k`` with ``z_i ~ q(z | x)`` (Burda et al. 2015, eq. 8). Its
        expectation is ``L_k``: ``ELBO ≤ L_k ≤ log p(x)``, rising to
        ``log p(x)`` with ``k``. Compiled once per ``chunk`` and
        ``batch_size``: ``batch_size`` examples at a time (vmapped, in a
        ``lax.map``), each with its ``k`` samples drawn and decoded ``chunk``
        at a time and summed by a running ``logsumexp``, so memory holds
        ``batch_size * chunk`` decoder passes whatever ``k``. Example ``i``
        draws from ``fold_in(key, i)``, so its estimate does not depend on
        ``batch_size``. ``x`` is used as given (binarize it first).

        Raises:
            ValueError: if ``k``, ``chunk`` or ``batch_size`` is not a positive
                int, or ``chunk`` does not divide ``k``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> x = jnp.ones((5, 4))
            >>> ll = model.log_likelihood(ts.params, ts.state, x, jax.random.key(1), k=64, chunk=16)
            >>> ll.shape
            (5,)
        """
        for name, value in (("k", k), ("chunk", chunk), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"log_likelihood: {name} must be a positive int, got {value!r}")
        if k % chunk:
            raise ValueError(f"log_likelihood: chunk must divide k, got k={k}, chunk={chunk}")
        x = jnp.asarray(x)
        return _log_likelihood(self, params, state, x, key, jnp.int32(k), chunk, batch_size)

    def objective(
        self, params: Any, state: Any, x: jax.Array, key: jax.Array
    ) -> tuple[jax.Array, tuple[Any, dict[str, jax.Array]]]:
        """The training objective ``-mean ELBO`` on a batch, for `fn.train.objective_step`.

        With ``binarize``, ``x`` is first binarized with a key split from
        ``key`` (a fresh draw each step: dynamic binarization). Returns
        ``(loss, (state, {"kl": mean KL, "log_px_given_z": mean log p(x | z)}))``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> loss, (_, metrics) = model.objective(ts.params, ts.state, jnp.ones((5, 4)), ts.key)
            >>> sorted(metrics)
            ['kl', 'log_px_given_z']
        """
        binarize_key, eps_key = jax.random.split(key)
        if self.binarize:
            x = binarize(binarize_key, x)
        log_px, kl = self.elbo_terms(params, state, x, eps_key)
        loss = jnp.mean(kl - log_px)
        return loss, (state, {"kl": jnp.mean(kl), "log_px_given_z": jnp.mean(log_px)})

    def step(self, optimizer: Any) -> Step:
        """The pure step ``(ts, x) -> (ts, metrics)``: `objective` through `objective_step`.

        Metrics: ``loss`` (``-ELBO``, nats per example), ``kl``,
        ``log_px_given_z``, ``grad_norm``, ``finite``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model, opt = vae(2, hidden=(8,)), fn.optim.sgd(0.1)
            >>> ts = model.init(jax.random.key(0), (5, 4), opt)
            >>> ts, metrics = jax.jit(model.step(opt))(ts, jnp.full((5, 4), 0.5))
            >>> int(ts.step), sorted(metrics)
            (1, ['finite', 'grad_norm', 'kl', 'log_px_given_z', 'loss'])
        """
        return objective_step(self.objective, optimizer)

    def evaluate(self, ts: TrainState, x: jax.Array, key: jax.Array) -> dict[str, float]:
        """Mean ``elbo``, ``log_px_given_z`` and ``kl`` (nats per example) on held-out ``x``.

        The ELBO is higher-is-better. With ``binarize``, ``x`` is binarized
        with a key split from ``key`` (binary ``x`` is unchanged by that), so a
        fixed key evaluates a fixed binarization. Compiled, all of ``x`` at once.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> model = vae(2, hidden=(8,))
            >>> ts = model.init(jax.random.key(0), (5, 4), fn.optim.sgd(0.1))
            >>> sorted(model.evaluate(ts, jnp.ones((5, 4)), jax.random.key(1)))
            ['elbo', 'kl', 'log_px_given_z']
        """
        values = _evaluate(self, ts.params, ts.state, jnp.asarray(x), key)
        return {name: float(value) for name, value in values.items()}


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(model: VAE, params: Any, state: Any, x: jax.Array, key: jax.Array):
    binarize_key, eps_key = jax.random.split(key)
    if model.binarize:
        x = binarize(binarize_key, x)
    log_px, kl = model.elbo_terms(params, state, x, eps_key)
    return {"elbo": jnp.mean(log_px - kl), "log_px_given_z": jnp.mean(log_px), "kl": jnp.mean(kl)}


@functools.partial(jax.jit, static_argnums=(0, 6, 7))
def _log_likelihood(
    model: VAE, params: Any, state: Any, x: jax.Array, key: jax.Array, k: jax.Array, chunk: int,
    batch_size: int,
) -> jax.Array:  # fmt: skip
    """`VAE.log_likelihood`: one example at a time, vmapped ``batch_size`` at a time.

    ``k`` is traced (a loop over ``k / chunk`` chunks), so every ``k`` with the
    same ``chunk`` shares one compilation.
    """

    def one(example: tuple[jax.Array, jax.Array]) -> jax.Array:
        xi, i = example
        mean, log_var = model.encode(params, state, xi[None])  # (1, latent)
        flat, example_key = xi.reshape(1, -1), jax.random.fold_in(key, i)

        def add_chunk(c: jax.Array, total: jax.Array) -> jax.Array:
            eps = jax.random.normal(jax.random.fold_in(example_key, c), (chunk, model.latent))
            z = mean + jnp.exp(0.5 * log_var) * eps
            log_w = (model._log_px_given_z(params, state, z, flat) + _normal_log_density(z)
                     - _normal_log_density(eps, log_var))  # fmt: skip
            return jnp.logaddexp(total, jax.nn.logsumexp(log_w))

        total = lax.fori_loop(0, k // chunk, add_chunk, jnp.array(-jnp.inf, jnp.float32))
        return total - jnp.log(k.astype(jnp.float32))

    return lax.map(one, (x, jnp.arange(x.shape[0])), batch_size=batch_size)


def vae(
    latent: int,
    hidden: Sequence[int] = (500, 500),
    decoder: str = "bernoulli",
    *,
    activation: Callable[[jax.Array], jax.Array] = softplus,
    binarize: bool | None = None,
) -> VAE:
    """A variational autoencoder (Kingma & Welling 2014) with a Gaussian encoder.

    Encoder: ``x -> hidden... -> (μ, log σ²)`` of ``q(z | x) = N(μ, diag σ²)``;
    decoder: ``z -> reversed(hidden)... ->`` the logits of independent
    Bernoulli pixels (``decoder="bernoulli"``) or the mean and log-variance
    of a diagonal Gaussian (``"gaussian"``); prior ``p(z) = N(0, I)``.
    Hidden layers are Dense + ``activation``; the output widths are fixed by
    the examples' size at ``init``. Training maximises the ELBO with one
    reparameterised sample per example; see the module docstring for the
    math and `VAE.log_likelihood` for the importance-sampled test likelihood.

    Args:
        latent: the number of latent dimensions.
        hidden: the encoder's hidden widths (the decoder uses them reversed).
        decoder: ``"bernoulli"`` for binary data (MNIST) or ``"gaussian"``
            for real-valued data. A Gaussian decoder's likelihood is a
            density: it is unbounded when a pixel is constant in the data.
        activation: the hidden nonlinearity.
        binarize: draw ``x ~ Bernoulli(x)`` from grey levels at every step and
            in `VAE.evaluate` (dynamic binarization); default True for the
            Bernoulli decoder. Not available with the Gaussian one.

    Raises:
        ValueError: on a non-positive ``latent`` or hidden width, an unknown
            ``decoder``, or ``binarize=True`` with the Gaussian decoder.

    Example:
        >>> model = vae(50, hidden=(500, 500))
        >>> model.latent, model.hidden, model.decoder, model.binarize
        (50, (500, 500), 'bernoulli', True)
    """
    if isinstance(latent, bool) or not isinstance(latent, int) or latent < 1:
        raise ValueError(f"vae: latent must be a positive int, got {latent!r}")
    hidden = tuple(hidden)
    if any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"vae: hidden must hold positive ints, got {hidden!r}")
    if decoder not in _DECODERS:
        raise ValueError(f"vae: decoder must be one of {_DECODERS}, got {decoder!r}")
    if binarize is None:
        binarize = decoder == "bernoulli"
    if binarize and decoder != "bernoulli":
        raise ValueError("vae: binarize=True needs decoder='bernoulli'")
    return VAE(latent, hidden, decoder, activation, bool(binarize))
