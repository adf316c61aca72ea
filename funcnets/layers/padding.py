"""Shape arithmetic shared by convolutions and pooling.

``padding`` is ``"SAME"``, ``"VALID"``, an int (the same on both sides of every
spatial axis) or a sequence of ``(low, high)`` pairs, one per spatial axis.
``"SAME"`` gives ``ceil(size / stride)`` outputs and puts the odd extra pad on
the high side, as XLA and TensorFlow do.
"""

from __future__ import annotations

from collections.abc import Sequence

Padding = str | int | Sequence[tuple[int, int]]


def explicit_padding(
    padding: Padding,
    sizes: Sequence[int],
    window: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int] | None = None,
) -> tuple[tuple[int, int], ...]:
    """Resolves a padding spec to ``(low, high)`` pairs for a sliding window.

    Args:
        padding: the spec (see the module docstring).
        sizes: the input's spatial sizes.
        window: the window (kernel) size per spatial axis.
        stride: the stride per spatial axis.
        dilation: the window dilation per spatial axis (1 when None).
    """
    n = len(sizes)
    dilation = dilation or (1,) * n
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode == "SAME":
            pairs = []
            for size, k, s, d in zip(sizes, window, stride, dilation, strict=True):
                extent = (k - 1) * d + 1
                out = -(-size // s)
                total = max((out - 1) * s + extent - size, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(
            f'padding must be "SAME", "VALID", an int or (low, high) pairs, got {padding!r}'
        )
    if isinstance(padding, int):
        if padding < 0:
            raise ValueError(f"padding must be non-negative, got {padding}")
        return ((padding, padding),) * n
    given = tuple((int(lo), int(hi)) for lo, hi in padding)
    if len(given) != n:
        raise ValueError(
            f"padding needs {n} (low, high) pairs, one per spatial axis, got {padding!r}"
        )
    return given


def window_output_size(
    size: int, window: int, stride: int, pad: tuple[int, int], dilation: int = 1
) -> int:
    """Number of window positions along one axis: ``(size + lo + hi - extent) // stride + 1``."""
    extent = (window - 1) * dilation + 1
    return (size + pad[0] + pad[1] - extent) // stride + 1
