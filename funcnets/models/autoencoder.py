"""Autoencoders: an encoder to a small code, a decoder back, trained to reconstruct.

Hinton & Salakhutdinov (Science 2006) trained a 784-1000-500-250-30 network
with a linear 30-unit code and logistic outputs on MNIST, by cross-entropy on
the pixels, and reported a test reconstruction error (squared, summed over
the 784 pixels, averaged over images) of 3.00 against 13.87 for PCA with 30
components. `autoencoder` builds that network (``kind="dense"``) or a
convolutional one (``kind="conv"``); with ``corruption`` it is a denoising
autoencoder (Vincent et al. 2008): each training batch is corrupted inside the
compiled step, from the step's key, and the clean batch is the target.

The returned `Autoencoder` follows the `Trainable` protocol
(funcnets.models.trainable): ``init``, ``step`` and ``evaluate``, plus
``encode``, ``decode`` and ``reconstruct``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from funcnets.activations import identity, relu, sigmoid
from funcnets.layers import Conv2D, ConvTranspose2D, Dense, Flatten, Layer, Reshape, Sequential
from funcnets.losses import binary_cross_entropy
from funcnets.train.evaluation import evaluate as evaluate_net
from funcnets.train.state import TrainState
from funcnets.train.state import init as init_state
from funcnets.train.step import Step, objective_step

#: ``corruption(key, x) -> x̃``: the noise of a denoising autoencoder.
Corruption = Callable[[jax.Array, jax.Array], jax.Array]
_CORRUPTION_STREAM = 0x4E4F4953  # fold_in tag separating corruption keys from layer keys


def masking_noise(rate: float) -> Corruption:
    """Sets each input value to 0 with probability ``rate`` (Vincent et al. 2008).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> noisy = masking_noise(0.3)(jax.random.key(0), jnp.ones((10000,)))
        >>> round(float(noisy.mean()), 1)
        0.7
    """
    if not 0 <= rate < 1:
        raise ValueError(f"masking_noise: rate must be in [0, 1), got {rate!r}")

    def corrupt(key: jax.Array, x: jax.Array) -> jax.Array:
        return jnp.where(jax.random.bernoulli(key, 1 - rate, x.shape), x, jnp.zeros_like(x))

    return corrupt


def gaussian_noise(std: float) -> Corruption:
    """Adds independent ``N(0, std²)`` noise to each input value.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> noisy = gaussian_noise(0.5)(jax.random.key(0), jnp.zeros((10000,)))
        >>> round(float(noisy.std()), 1)
        0.5
    """
    if not std >= 0:
        raise ValueError(f"gaussian_noise: std must be >= 0, got {std!r}")

    def corrupt(key: jax.Array, x: jax.Array) -> jax.Array:
        return x + std * jax.random.normal(key, x.shape, x.dtype)

    return corrupt


def _per_image(values: jax.Array) -> jax.Array:
    """Summed over each example's values, averaged over the batch."""
    return jnp.mean(jnp.sum(values.reshape(values.shape[0], -1), axis=1))


def _bce(logits: jax.Array, x: jax.Array) -> jax.Array:
    return _per_image(binary_cross_entropy(logits, x, reduction="none"))


def _squared(reconstruction: jax.Array, x: jax.Array) -> jax.Array:
    return _per_image(jnp.square(reconstruction - x))


#: ``loss -> (output, loss(outputs, x))``: the decoder's outputs become the
#: reconstruction through ``output``; the loss reads the raw outputs.
_LOSSES: dict[str, tuple[Callable[[jax.Array], jax.Array], Callable[..., jax.Array]]] = {
    "bce": (sigmoid, _bce),  # logistic outputs, cross-entropy on the pixels
    "mse": (identity, _squared),  # linear outputs, squared error
}


class Autoencoder:
    """An encoder and a decoder `Layer`, trained end to end to reconstruct their input.

    Params and state are ``{"encoder": ..., "decoder": ...}`` (the net is
    ``Sequential(encoder=..., decoder=...)``). The decoder outputs logits
    (``loss="bce"``: the reconstruction is their sigmoid and the loss the
    pixels' binary cross-entropy, for inputs in [0, 1]) or the reconstruction
    itself (``loss="mse"``: the loss is the squared error). Both losses are
    summed over each example's values and averaged over the batch.

    Args:
        encoder: ``(batch, *shape) -> (batch, code)``.
        decoder: ``(batch, code) -> (batch, *shape)``.
        shape: one example's shape, e.g. ``(28, 28, 1)``.
        loss: ``"bce"`` or ``"mse"``.
        corruption: ``corruption(key, x) -> x̃`` (`masking_noise`,
            `gaussian_noise`, or your own): a denoising autoencoder, trained
            to reconstruct ``x`` from ``x̃``, drawn inside the step from the
            step's key. None: a plain autoencoder.
    """

    def __init__(
        self,
        encoder: Layer,
        decoder: Layer,
        shape: Sequence[int],
        *,
        loss: str = "bce",
        corruption: Corruption | None = None,
    ) -> None:
        if loss not in _LOSSES:
            raise ValueError(f'loss must be "bce" or "mse", got {loss!r}')
        self.encoder, self.decoder, self.shape = encoder, decoder, tuple(shape)
        self.net = Sequential(encoder=encoder, decoder=decoder)
        self.loss, self.corruption = loss, corruption
        self.output, loss_fn = _LOSSES[loss]
        output = self.output

        def squared_error(outputs: jax.Array, x: jax.Array) -> jax.Array:
            return _squared(output(outputs), x)

        # Built once: `fn.train.evaluate` compiles once per net and metrics.
        self._metrics = {"loss": loss_fn, "squared_error": squared_error}

    def init(self, key: jax.Array, input_shape: tuple[int, ...], optimizer: Any) -> TrainState:
        """A fresh `TrainState` for batches of ``input_shape``: ``(batch, *shape)``.

        ``key`` is split into the parameters' key and the run's key
        (`fn.train.init`); ``opt_state`` is ``optimizer.init(params)``.

        Example:
            >>> import jax, funcnets as fn
            >>> ts = autoencoder((4,), 2, (3,)).init(jax.random.key(0), (8, 4), fn.optim.sgd(0.1))
            >>> sorted(ts.params), ts.params["decoder"]["output"]["w"].shape
            (['decoder', 'encoder'], (3, 4))
        """
        if tuple(input_shape[1:]) != self.shape:
            raise ValueError(
                f"input_shape must be (batch, *{self.shape}) for this autoencoder, "
                f"got {tuple(input_shape)}"
            )
        return init_state(self.net, optimizer, key, tuple(input_shape))

    def step(self, optimizer: Any) -> Step:
        """The pure step ``(ts, x) -> (ts, metrics)``: one ``optimizer`` update of the loss.

        The input is ``corruption(fold_in(key, ·), x)`` when there is a
        corruption (``key`` the step's key, `fn.train.step_key`), else ``x``;
        the target is ``x``. Metrics: ``loss``, ``squared_error`` (of this
        batch's reconstruction), ``grad_norm`` and ``finite``
        (`fn.train.objective_step`).

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> ae, opt = autoencoder((4,), 2, (3,), loss="mse"), fn.optim.sgd(0.1)
            >>> ts = ae.init(jax.random.key(0), (8, 4), opt)
            >>> _, metrics = jax.eval_shape(ae.step(opt), ts, jnp.ones((8, 4)))  # traced only
            >>> sorted(metrics)
            ['finite', 'grad_norm', 'loss', 'squared_error']
        """
        loss_fn, squared_error = self._metrics["loss"], self._metrics["squared_error"]

        def objective(params, state, x, key):
            inputs = x
            if self.corruption is not None:
                inputs = self.corruption(jax.random.fold_in(key, _CORRUPTION_STREAM), x)
            outputs, state = self.net.apply(params, state, inputs, key=key, train=True)
            error = jax.lax.stop_gradient(squared_error(outputs, x))
            return loss_fn(outputs, x), (state, {"squared_error": error})

        return objective_step(objective, optimizer)

    def evaluate(self, ts: TrainState, x: jax.Array, key: jax.Array) -> dict[str, float]:
        """The loss and ``squared_error`` per example (summed over its values) on ``x``.

        With a corruption, also ``denoised_squared_error``: the squared error
        of the reconstruction of ``corruption(key, x)`` against ``x``.
        Computed in batches of 1,000 (`fn.train.evaluate`), ``train=False``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> ae = autoencoder((4,), 2, (3,), corruption=gaussian_noise(0.1))
            >>> ts = ae.init(jax.random.key(0), (8, 4), fn.optim.sgd(0.1))
            >>> sorted(ae.evaluate(ts, jnp.ones((8, 4)), jax.random.key(1)))
            ['denoised_squared_error', 'loss', 'squared_error']
        """
        numbers = evaluate_net(self.net, ts, (x, x), metrics=self._metrics, batch_size=1000)
        if self.corruption is not None:
            noisy = self.corruption(key, jnp.asarray(x))
            denoised = evaluate_net(
                self.net, ts, (noisy, x), metrics=self._metrics, batch_size=1000
            )
            numbers["denoised_squared_error"] = denoised["squared_error"]
        return numbers

    def encode(self, params: Any, state: Any, x: jax.Array) -> jax.Array:
        """The codes ``(batch, code)`` of ``x`` ``(batch, *shape)``; pure and jittable.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> ae = autoencoder((4,), 2, (3,))
            >>> ts = ae.init(jax.random.key(0), (8, 4), fn.optim.sgd(0.1))
            >>> ae.encode(ts.params, ts.state, jnp.ones((5, 4))).shape
            (5, 2)
        """
        return self.encoder.apply(params["encoder"], state["encoder"], x)[0]

    def decode(self, params: Any, state: Any, codes: jax.Array) -> jax.Array:
        """The reconstructions ``(batch, *shape)`` from ``codes`` ``(batch, code)``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> ae = autoencoder((4,), 2, (3,))
            >>> ts = ae.init(jax.random.key(0), (8, 4), fn.optim.sgd(0.1))
            >>> ae.decode(ts.params, ts.state, jnp.zeros((5, 2))).shape
            (5, 4)
        """
        return self.output(self.decoder.apply(params["decoder"], state["decoder"], codes)[0])

    def reconstruct(self, params: Any, state: Any, x: jax.Array) -> jax.Array:
        """``decode(encode(x))``, ``(batch, *shape)``: in [0, 1] with ``loss="bce"``.

        Example:
            >>> import jax, jax.numpy as jnp, funcnets as fn
            >>> ae = autoencoder((4,), 2, (3,))
            >>> ts = ae.init(jax.random.key(0), (8, 4), fn.optim.sgd(0.1))
            >>> bool(jnp.all(ae.reconstruct(ts.params, ts.state, jnp.ones((5, 4))) < 1))
            True
        """
        return self.decode(params, state, self.encode(params, state, x))


def _dense(shape: tuple[int, ...], code: int, hidden: Sequence[int], activation: Callable):
    """Flatten, Dense layers of ``hidden`` and a linear code; the mirror image back."""
    encoder: dict[str, Layer | Callable] = {"flatten": Flatten()}
    decoder: dict[str, Layer | Callable] = {}
    for i, width in enumerate(hidden):
        encoder |= {f"dense{i}": Dense(width), f"act{i}": activation}
    for i, width in enumerate(reversed(hidden)):
        decoder |= {f"dense{i}": Dense(width), f"act{i}": activation}
    encoder["code"] = Dense(code)
    decoder |= {"output": Dense(math.prod(shape)), "reshape": Reshape(shape)}
    return Sequential(**encoder), Sequential(**decoder)


def _conv(shape: tuple[int, ...], code: int, hidden: Sequence[int], activation: Callable):
    """3x3 stride-2 convolutions of ``hidden`` channels, then a linear code; the mirror back."""
    height, width, channels = shape
    size = 2 ** len(hidden)
    if height % size or width % size:
        raise ValueError(
            f"shape {shape}: a conv autoencoder with {len(hidden)} stride-2 stages needs height "
            f"and width divisible by {size}"
        )
    encoder: dict[str, Layer | Callable] = {}
    decoder: dict[str, Layer | Callable] = {}
    for i, features in enumerate(hidden):
        encoder |= {f"conv{i}": Conv2D(features, 3, stride=2), f"act{i}": activation}
    inner = (height // size, width // size, hidden[-1])
    encoder |= {"flatten": Flatten(), "code": Dense(code)}
    decoder |= {"dense": Dense(math.prod(inner)), "act": activation, "reshape": Reshape(inner)}
    for i, features in enumerate([*reversed(hidden[:-1]), channels]):
        decoder[f"deconv{i}"] = ConvTranspose2D(features, 3, stride=2)
        if i < len(hidden) - 1:
            decoder[f"act{i}"] = activation
    return Sequential(**encoder), Sequential(**decoder)


_KINDS = {"dense": _dense, "conv": _conv}


def autoencoder(
    shape: Sequence[int],
    code: int,
    hidden: Sequence[int],
    *,
    kind: str = "dense",
    activation: Callable[[jax.Array], jax.Array] = relu,
    loss: str = "bce",
    corruption: Corruption | None = None,
) -> Autoencoder:
    """A dense or convolutional autoencoder of examples of ``shape`` with a ``code``-unit code.

    ``kind="dense"``: the encoder flattens and applies ``Dense(h)`` and
    ``activation`` for each ``h`` of ``hidden``, then a linear
    ``Dense(code)``; the decoder mirrors it, ``hidden`` reversed, and ends in
    ``Dense(prod(shape))`` reshaped to ``shape`` (children ``dense{i}``,
    ``act{i}``, ``code``; ``dense{i}``, ``act{i}``, ``output``, ``reshape``).
    Hinton & Salakhutdinov's network is ``autoencoder((28, 28, 1), 30,
    (1000, 500, 250))``.

    ``kind="conv"``: ``shape`` is ``(height, width, channels)``; the encoder
    applies a 3x3 stride-2 ``Conv2D`` ("SAME") of ``h`` channels and
    ``activation`` for each ``h`` of ``hidden`` (height and width must be
    divisible by ``2**len(hidden)``), then a linear ``Dense(code)``; the
    decoder maps the code by ``Dense`` and ``activation`` to the last
    feature map and back up by 3x3 stride-2 ``ConvTranspose2D`` layers to
    ``channels`` outputs.

    The output is logistic and the loss the pixels' cross-entropy with
    ``loss="bce"`` (inputs in [0, 1]), linear with a squared error for
    ``"mse"``; ``corruption`` makes it a denoising autoencoder. See
    `Autoencoder`.

    Example:
        >>> import jax, jax.numpy as jnp, funcnets as fn
        >>> from funcnets.models.autoencoder import autoencoder, masking_noise
        >>> ae = autoencoder((8, 8, 1), 2, (16,), corruption=masking_noise(0.2))
        >>> opt = fn.optim.adam(1e-3)
        >>> ts = ae.init(jax.random.key(0), (4, 8, 8, 1), opt)
        >>> jax.tree.map(jnp.shape, ts.params["encoder"]["code"])
        {'b': (2,), 'w': (16, 2)}
        >>> ae.reconstruct(ts.params, ts.state, jnp.zeros((4, 8, 8, 1))).shape
        (4, 8, 8, 1)
        >>> conv = autoencoder((28, 28, 1), 16, (32, 64), kind="conv")  # 28 -> 14 -> 7 and back
        >>> params = jax.eval_shape(lambda k: conv.init(k, (4, 28, 28, 1), opt).params,
        ...                         jax.random.key(0))
        >>> params["encoder"]["code"]["w"].shape, params["decoder"]["deconv1"]["w"].shape
        ((3136, 16), (3, 3, 32, 1))
    """
    if kind not in _KINDS:
        raise ValueError(f'kind must be "dense" or "conv", got {kind!r}')
    shape = tuple(shape)
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"shape must be one example's shape of positive ints, got {shape}")
    if kind == "conv" and len(shape) != 3:
        raise ValueError(f"shape must be (height, width, channels) for kind='conv', got {shape}")
    if not isinstance(code, int) or code < 1:
        raise ValueError(f"code must be an int >= 1, got {code!r}")
    if any(not isinstance(h, int) or h < 1 for h in hidden) or (kind == "conv" and not hidden):
        raise ValueError(
            f"hidden must be positive int widths (one or more for kind='conv'), got {hidden!r}"
        )
    encoder, decoder = _KINDS[kind](shape, code, hidden, activation)
    return Autoencoder(encoder, decoder, shape, loss=loss, corruption=corruption)
