"""Construction-time checks of optimizer hyperparameters.

Each building block and alias declares the domain of its numeric arguments with
:func:`checked`; a value outside it raises a ValueError naming the function, the
argument and the domain, before any step is taken (``sgd(-0.05)`` would climb
the loss, ``adam(b1=1.0)`` divide by zero in its bias correction). Only Python
and numpy numbers are checked: jax arrays (tracers included, or values passed as
arrays so that a sweep does not recompile), schedules and None pass unchecked.
"""

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import TypeVar, cast

F = TypeVar("F", bound=Callable)
Rule = tuple[Callable[[float], bool], str]
"""A test of a number, and the domain it accepts in words."""

RATE: Rule = (lambda v: 0 <= v < math.inf, "a finite number >= 0, a jax.Array or a schedule")
DECAY: Rule = (lambda v: 0 <= v < 1, "in [0, 1)")
UNIT: Rule = (lambda v: 0 <= v <= 1, "in [0, 1]")
NON_NEGATIVE: Rule = (lambda v: 0 <= v < math.inf, "a finite number >= 0")
POSITIVE: Rule = (lambda v: 0 < v < math.inf, "a finite number > 0")
FINITE: Rule = (math.isfinite, "a finite number")


def checked(**rules: Rule) -> Callable[[F], F]:
    """Decorates a factory so that it checks the named arguments when called.

    Args:
        **rules: The rule of each checked argument, by name.

    Returns:
        A decorator keeping the factory's name, docstring and signature.

    Example:
        >>> import funcnets as fn
        >>> fn.optim.adam(1e-3, b1=1.0)
        Traceback (most recent call last):
        ...
        ValueError: adam: b1 must be in [0, 1), got 1.0
    """

    def decorate(factory: F) -> F:
        signature = inspect.signature(factory)

        @functools.wraps(factory)
        def checked_factory(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs)
            arguments.apply_defaults()
            for name, (test, domain) in rules.items():
                value = arguments.arguments[name]
                if isinstance(value, numbers.Real) and not test(value):
                    raise ValueError(f"{factory.__name__}: {name} must be {domain}, got {value!r}")
            return factory(*args, **kwargs)

        return cast(F, checked_factory)

    return decorate
