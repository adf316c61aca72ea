"""Generative adversarial networks (Goodfellow et al. 2014), trained in one compiled step.

A generator ``G`` maps noise ``z ~ N(0, I)`` to examples; a discriminator
``D`` maps an example to one logit, the log-odds that it is real. Both are
`Layer`s; `gan` pairs them into a `Trainable` whose step updates both,
alternating, inside one pure function (Goodfellow et al.'s Algorithm 1 with
``k = 1``), with the non-saturating generator loss of their §3:

- ``D`` minimises ``BCE(D(x), 1) + BCE(D(G(z)), 0)``, i.e. maximises
  ``log D(x) + log(1 - D(G(z)))``;
- then ``G`` minimises ``BCE(D'(G(z)), 1) = -log D'(G(z))`` through the
  discriminator ``D'`` just updated, rather than the saturating
  ``log(1 - D(G(z)))``, whose gradient vanishes while ``D`` wins easily.

`dcgan_mnist` gives a small DCGAN (Radford, Metz & Chintala 2016) for 28x28x1
images in [0, 1].
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from funcnets.activations import leaky_relu, relu, sigmoid, tanh
from funcnets.initializers import normal
from funcnets.layers import (
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Flatten,
    Lambda,
    Layer,
    Reshape,
    Sequential,
)
from funcnets.losses import binary_cross_entropy
from funcnets.train.state import TrainState, new_state
from funcnets.train.step import FINITE, Step, either, guarded_update, step_key

NETS = ("generator", "discriminator")


def _bce(logits: jax.Array, label: float) -> jax.Array:
    return binary_cross_entropy(logits, jnp.full_like(logits, label))


def _optimizers(optimizer: Any) -> tuple[Any, Any]:
    """``(generator's, discriminator's)``: one transform for both, or a dict naming each."""
    if isinstance(optimizer, Mapping):
        if set(optimizer) != set(NETS):
            raise ValueError(
                f'optimizer must be one transform or a dict with keys "generator" and '
                f'"discriminator", got keys {sorted(optimizer)}'
            )
        return optimizer["generator"], optimizer["discriminator"]
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise ValueError(
            f"optimizer must have init and update (e.g. fn.optim.adam), got {type(optimizer)}"
        )
    return optimizer, optimizer


@dataclasses.dataclass(frozen=True)
class GAN:
    """A generator and a discriminator trained against each other; see the module docstring.

    Made by `gan`. A `Trainable`: ``init``, ``step`` and ``evaluate`` work
    with `fn.train.run`; ``sample`` draws examples. Its `TrainState` holds
    ``params``, ``state`` and ``opt_state`` as dicts ``{"generator": ...,
    "discriminator": ...}``.

    Attributes:
        generator: a `Layer` from (batch, latent) noise to (batch, *example).
        discriminator: a `Layer` from (batch, *example) to (batch, 1) logits.
        latent: the noise's dimension.
    """

    generator: Layer
    discriminator: Layer
    latent: int

    def init(self, key: jax.Array, input_shape: tuple[int, ...], optimizer: Any) -> TrainState:
        """A fresh `TrainState` for real examples of ``input_shape`` (batch included).

        ``optimizer`` is one transform (each network gets its own state of it)
        or ``{"generator": ..., "discriminator": ...}``. ``key`` is split
        three ways: the generator's parameters, the discriminator's, and the
        run's key.

        Raises:
            ValueError: when the generator's output is not of the examples'
                shape, the discriminator's is not (batch, 1), or
                ``input_shape`` or ``optimizer`` is malformed.
        """
        if not (
            isinstance(input_shape, tuple | list)
            and len(input_shape) >= 2
            and all(isinstance(d, int) and d >= 1 for d in input_shape)
        ):
            raise ValueError(
                f"input_shape must be (batch, *example) of positive ints, got {input_shape!r}"
            )
        input_shape = tuple(input_shape)
        g_opt, d_opt = _optimizers(optimizer)
        g_key, d_key, run_key = jax.random.split(key, 3)
        batch = input_shape[0]
        g_shape, g_params, g_state = self.generator.init(g_key, (batch, self.latent))
        if tuple(g_shape) != input_shape:
            raise ValueError(
                f"generator: maps (batch, {self.latent}) noise to {tuple(g_shape)}, but the "
                f"examples are {input_shape}"
            )
        d_shape, d_params, d_state = self.discriminator.init(d_key, input_shape)
        if tuple(d_shape) != (batch, 1):
            raise ValueError(
                f"discriminator: must give (batch, 1) logits, gives {tuple(d_shape)} "
                f"for input {input_shape}"
            )
        params = {"generator": g_params, "discriminator": d_params}
        state = {"generator": g_state, "discriminator": d_state}
        opt_state = {"generator": g_opt.init(g_params), "discriminator": d_opt.init(d_params)}
        return new_state(params, state, opt_state, run_key)

    def step(self, optimizer: Any) -> Step:
        """The pure step ``(ts, x) -> (ts, metrics)``: one update of each network.

        With ``z`` drawn from the step's key (``fold_in(ts.key, ts.step)``),
        ``G(z)`` is computed once, in training mode: the discriminator takes
        one update on the real batch ``x`` and ``G(z)`` (no gradient reaches
        ``G``), then the generator takes one update on ``-log D'(G(z))``
        through the updated discriminator ``D'`` (``G``'s vector-Jacobian
        product from the same forward pass, as in PyTorch's DCGAN example).
        ``D`` sees the real and the generated batch separately (so BatchNorm
        normalises each by its own statistics); its running statistics come
        from its own update only.

        Each update goes through `fn.train.guarded_update`; if either is not
        finite the whole step is dropped (both networks, their states and
        optimizer states stay as they were) and ``metrics["finite"]`` is False.

        Metrics: ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (the mean
        probability ``D`` gives real and generated examples before its
        update), ``finite``.
        """
        g_opt, d_opt = _optimizers(optimizer)
        generator, discriminator, latent = self.generator, self.discriminator, self.latent

        def step(ts: TrainState, x: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
            z_key, g_key, real_key, fake_key, again_key = jax.random.split(step_key(ts), 5)
            z = jax.random.normal(z_key, (x.shape[0], latent), x.dtype)
            params, state, opt_state = ts.params, ts.state, ts.opt_state
            gp, dp = params["generator"], params["discriminator"]

            def generate(gp):
                return generator.apply(gp, state["generator"], z, key=g_key, train=True)

            fake, pullback, g_state = jax.vjp(generate, gp, has_aux=True)

            def d_objective(dp):
                real_logits, d_state = discriminator.apply(
                    dp, state["discriminator"], x, key=real_key, train=True
                )
                fake_logits, d_state = discriminator.apply(
                    dp, d_state, jax.lax.stop_gradient(fake), key=fake_key, train=True
                )
                loss = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)
                seen = (jnp.mean(sigmoid(real_logits)), jnp.mean(sigmoid(fake_logits)))
                return loss, (d_state, seen)

            (d_loss, (d_state, (d_real, d_fake))), d_grads = jax.value_and_grad(
                d_objective, has_aux=True
            )(dp)
            new_dp, new_do, d_ok = guarded_update(
                d_opt, d_grads, opt_state["discriminator"], dp, d_loss
            )

            def g_objective(images):
                logits, _ = discriminator.apply(new_dp, d_state, images, key=again_key, train=True)
                return _bce(logits, 1.0)

            g_loss, image_grads = jax.value_and_grad(g_objective)(fake)
            (g_grads,) = pullback(image_grads)
            new_gp, new_go, g_ok = guarded_update(
                g_opt, g_grads, opt_state["generator"], gp, g_loss
            )
            ok = d_ok & g_ok
            kept = either(
                ok,
                lambda: (
                    {"generator": new_gp, "discriminator": new_dp},
                    {"generator": g_state, "discriminator": d_state},
                    {"generator": new_go, "discriminator": new_do},
                ),
                lambda: (params, state, opt_state),
            )
            metrics = {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}
            new_ts = ts._replace(params=kept[0], state=kept[1], opt_state=kept[2], step=ts.step + 1)
            return new_ts, {**metrics, FINITE: ok}

        return step

    def sample(self, params: Any, state: Any, key: jax.Array, n: int) -> jax.Array:
        """``n`` examples ``G(z)``, ``z ~ N(0, I)`` from ``key``, the generator in inference mode.

        ``params`` and ``state`` are the dicts of both networks (``ts.params``,
        ``ts.state``). Returns (n, *example).
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        z = jax.random.normal(key, (n, self.latent))
        return self.generator.apply(params["generator"], state["generator"], z)[0]

    @functools.partial(jax.jit, static_argnums=0)
    def _scores(self, params: Any, state: Any, x: jax.Array, key: jax.Array) -> dict:
        fake = self.sample(params, state, key, x.shape[0])
        d_params, d_state = params["discriminator"], state["discriminator"]
        real_logits = self.discriminator.apply(d_params, d_state, x)[0]
        fake_logits = self.discriminator.apply(d_params, d_state, fake)[0]
        return {
            "d_loss": _bce(real_logits, 1.0) + _bce(fake_logits, 0.0),
            "g_loss": _bce(fake_logits, 1.0),
            "d_accuracy": (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0)) / 2,
        }

    def evaluate(self, ts: TrainState, x: jax.Array, key: jax.Array) -> dict[str, float]:
        """The two losses and the discriminator's accuracy on ``x`` and as many samples.

        Both networks in inference mode; the samples come from ``key``.
        Returns ``d_loss`` (lower: ``D`` tells real from generated better),
        ``g_loss`` (lower: ``G`` fools ``D`` better) and ``d_accuracy``, the
        fraction of real and generated examples ``D`` classifies rightly
        (0.5 when it cannot tell them apart).
        """
        x = jnp.asarray(x)
        if x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"x must be (n, *example) with n >= 1, got shape {x.shape}")
        return {k: float(v) for k, v in self._scores(ts.params, ts.state, x, key).items()}


def gan(generator: Layer, discriminator: Layer, latent: int) -> GAN:
    """A GAN of ``generator`` and ``discriminator``, trained with one alternating step.

    Args:
        generator: a `Layer` mapping (batch, latent) noise to (batch, *example),
            e.g. ending in a sigmoid for images in [0, 1].
        discriminator: a `Layer` mapping (batch, *example) to (batch, 1) logits.
        latent: the noise's dimension, ``z ~ N(0, I_latent)``.

    Returns:
        A `GAN` (a `Trainable`): ``init(key, input_shape, optimizer)``,
        ``step(optimizer)``, ``evaluate(ts, x, key)``, ``sample(params,
        state, key, n)``. ``optimizer`` is one transform, used for both
        networks with separate states, or ``{"generator": ...,
        "discriminator": ...}``.

    Reference: Goodfellow et al. 2014, "Generative adversarial nets".

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> model = gan(fn.Dense(2), fn.Sequential(fn.Dense(8), fn.relu, fn.Dense(1)), latent=3)
        >>> opt = fn.optim.adam(1e-3)
        >>> ts = model.init(jax.random.key(0), (16, 2), opt)
        >>> model.sample(ts.params, ts.state, jax.random.key(1), 5).shape
        (5, 2)
        >>> _, metrics = jax.eval_shape(model.step(opt), ts, jnp.ones((16, 2)))  # jit it to train
        >>> sorted(metrics)
        ['d_fake', 'd_loss', 'd_real', 'finite', 'g_loss']
    """
    if not isinstance(generator, Layer):
        raise ValueError(f"generator must be a Layer, got {type(generator).__name__}")
    if not isinstance(discriminator, Layer):
        raise ValueError(f"discriminator must be a Layer, got {type(discriminator).__name__}")
    if not isinstance(latent, int) or isinstance(latent, bool) or latent < 1:
        raise ValueError(f"latent must be a positive int, got {latent!r}")
    return GAN(generator, discriminator, latent)


def dcgan_mnist(latent: int = 100, width: int = 64) -> GAN:
    """A small DCGAN for 28x28x1 images in [0, 1] (Radford, Metz & Chintala 2016).

    DCGAN's rules at MNIST's size: strided (transposed) convolutions instead
    of pooling, BatchNorm in both networks except the generator's output and
    the discriminator's input, ReLU in the generator, leaky ReLU (slope 0.2)
    in the discriminator, no hidden dense layers but the generator's
    projection, weights drawn from N(0, 0.02). Both networks work on the
    paper's centred scale [-1, 1] while the model takes and gives images in
    [0, 1]: the generator ends in ``(tanh(a) + 1) / 2`` and the discriminator
    starts with ``2x - 1``. (Checked on CPU, 600 steps of width 32: with a
    plain sigmoid output, uncentred inputs and Lecun-normal weights, the
    discriminator won more easily and the samples' Fréchet distance to real
    images was ~1.8x larger.)

    Shapes for ``width = w``: generator (batch, latent) -> Dense 7·7·2w ->
    (7, 7, 2w) -> ConvTranspose 4x4 stride 2 -> (14, 14, w) -> ConvTranspose
    4x4 stride 2 -> (28, 28, 1); discriminator (28, 28, 1) -> Conv 4x4
    stride 2 -> (14, 14, w) -> Conv 4x4 stride 2 -> (7, 7, 2w) -> Dense 1.
    With the defaults: 771,969 generator and 138,689 discriminator params.

    Example:
        >>> import jax, funcnets as fn
        >>> model = dcgan_mnist()
        >>> ts = jax.eval_shape(  # shapes only; call model.init itself to train
        ...     lambda key: model.init(key, (128, 28, 28, 1), fn.optim.adam(2e-4, b1=0.5)),
        ...     jax.random.key(0))
        >>> [sum(p.size for p in jax.tree.leaves(ts.params[net])) for net in NETS]
        [771969, 138689]
    """
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    w = normal(0.02)
    leaky = Lambda(functools.partial(leaky_relu, negative_slope=0.2), name="leaky_relu(0.2)")
    generator = Sequential(
        project=Dense(7 * 7 * 2 * width, use_bias=False, w_init=w), bn0=BatchNorm(), act0=relu,
        reshape=Reshape((7, 7, 2 * width)),
        up1=ConvTranspose2D(width, 4, stride=2, use_bias=False, w_init=w), bn1=BatchNorm(),
        act1=relu,
        up2=ConvTranspose2D(1, 4, stride=2, w_init=w),
        output=Lambda(lambda a: (tanh(a) + 1) / 2, name="tanh_to_unit_interval"),
    )  # fmt: skip
    discriminator = Sequential(
        centre=Lambda(lambda x: 2 * x - 1, name="centre"),
        conv1=Conv2D(width, 4, stride=2, w_init=w), act1=leaky,
        conv2=Conv2D(2 * width, 4, stride=2, use_bias=False, w_init=w), bn2=BatchNorm(), act2=leaky,
        flatten=Flatten(), output=Dense(1, w_init=w),
    )  # fmt: skip
    return gan(generator, discriminator, latent)
