"""Learning curves of several seeds: return against environment steps, mean and spread."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def curves_on_common_steps(
    env_steps: Any, returns: Any, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's return curve interpolated at common environment-step counts.

    Args:
        env_steps: ``(seeds, iterations)``, the environment steps each
            iteration consumed (they differ between seeds when episodes do).
        returns: ``(seeds, iterations)``, the mean return of each iteration.
        points: the number of step counts.

    Returns:
        ``(steps (points,), curves (seeds, points))``: step counts from the
        first iteration's to the fewest any seed reached, and each seed's
        return there (linear interpolation, each iteration placed at the
        cumulative step count at its end).

    Example:
        >>> import numpy as np, funcnets as fn
        >>> steps, curves = fn.rl.curves_on_common_steps(np.full((2, 3), 10), np.ones((2, 3)), 5)
        >>> steps.tolist(), curves.shape
        ([10.0, 15.0, 20.0, 25.0, 30.0], (2, 5))
    """
    cumulative = np.cumsum(np.asarray(env_steps, np.float64), axis=1)
    returns = np.asarray(returns, np.float64)
    grid = np.linspace(cumulative[:, 0].max(), cumulative[:, -1].min(), points)
    curves = np.stack([np.interp(grid, c, r) for c, r in zip(cumulative, returns)])
    return grid, curves


def plot_returns(
    env_steps: Any,
    returns: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    threshold: float | None = None,
    title: str = "",
    axes: Any = None,
) -> Figure:
    """Return against environment steps over seeds: each seed, their mean and min-max band.

    ``env_steps`` and ``returns`` are ``(seeds, iterations)`` as `fn.rl.train`
    reports them (metrics ``"env_steps"`` and ``"return"`` of a vmapped run);
    see `curves_on_common_steps`. ``threshold`` draws a dashed line (e.g. 475,
    CartPole-v1's). With ``path`` the figure is saved there as PNG; with
    ``axes`` (a matplotlib ``Axes``) the curves are drawn there, e.g. one
    panel per algorithm, and its figure is returned.

    Example:
        >>> import numpy as np, funcnets as fn
        >>> steps, returns = np.full((3, 50), 100), np.linspace(20, 500, 50) * np.ones((3, 1))
        >>> figure = fn.rl.plot_returns(steps, returns, threshold=475)
        >>> figure.axes[0].get_xlabel()
        'environment steps'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps, curves = curves_on_common_steps(env_steps, returns)
    if axes is None:
        figure = Figure(figsize=(7, 4.5))
        FigureCanvasAgg(figure)
        axes = figure.subplots()
    figure = axes.figure
    for curve in curves:
        axes.plot(steps, curve, color="tab:blue", alpha=0.15, linewidth=0.8)
    axes.fill_between(steps, curves.min(0), curves.max(0), color="tab:blue", alpha=0.15)
    axes.plot(steps, curves.mean(0), color="tab:blue", label=f"mean of {len(curves)} seeds")
    if threshold is not None:
        axes.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"{threshold:g}")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("episode return")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
