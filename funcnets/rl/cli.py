"""``funcnets rl cartpole``: train agents on CartPole-v1, one per seed, in one compiled call.

The default recipe (experiments/cartpole_reinforce.py runs it for 10 seeds):
REINFORCE with a learned value baseline, policy and value each an MLP of
two tanh layers of 64 (`fn.models.mlp`), Adam at 1e-3 on the sum of the
policy loss and half the value loss, 16 episodes per update, gamma 0.99,
advantages standardised per batch, 300 updates. ``--algorithm a2c``: A2C
with 16 environments x 32 steps per update, entropy bonus 0.01, Adam at 1e-3
decayed linearly to 0 over 2,000 updates. Each agent is then evaluated on
100 new episodes, sampling from its policy (and, reported alongside, taking
its most likely action); CartPole-v1 is solved at a mean return of 475.

    funcnets rl cartpole [--algorithm reinforce|a2c] [--seeds N] [--seed S]
                         [--iterations N] [--lr LR] [--num-envs N]
                         [--eval-episodes N] [--out DIR] [--no-progress]

``python -m funcnets.rl [flags]`` runs the same command. ``--out DIR``
writes ``DIR/cartpole.json`` (settings, per-seed evaluation, per-iteration
returns and environment steps, wall times) and ``DIR/cartpole.png`` (return
against environment steps).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from funcnets import activations, models, optim
from funcnets.rl.a2c import a2c
from funcnets.rl.agent import Agent
from funcnets.rl.cartpole import CartPole
from funcnets.rl.plot import plot_returns
from funcnets.rl.reinforce import reinforce
from funcnets.rl.runs import train_and_evaluate

#: CartPole-v1's ``reward_threshold`` in Gymnasium: solved at this mean return over 100 episodes.
SOLVED = 475.0
ALGORITHMS = ("reinforce", "a2c")
_ITERATIONS = {"reinforce": 300, "a2c": 2000}
_LR = {"reinforce": 1e-3, "a2c": 1e-3}


def cartpole_agent(
    algorithm: str = "reinforce", *, iterations: int | None = None, lr: float | None = None,
    num_envs: int = 16,
) -> Agent:  # fmt: skip
    """The module docstring's recipe as an `Agent` on `CartPole` (``iterations``: A2C's decay).

    Example:
        >>> import funcnets as fn
        >>> agent = fn.rl.cartpole_agent("reinforce", num_envs=4)
        >>> type(agent).__name__
        'Agent'
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    env = CartPole()
    policy = models.mlp([64, 64, env.num_actions], activation=activations.tanh)
    value = models.mlp([64, 64, 1], activation=activations.tanh)
    if algorithm == "reinforce":
        return reinforce(
            env, policy, optim.adam(lr or _LR[algorithm]), value=value, num_envs=num_envs
        )
    schedule = optim.linear_schedule(
        lr or _LR[algorithm], 0.0, iterations or _ITERATIONS[algorithm]
    )
    return a2c(env, policy, value, optim.adam(schedule), num_envs=num_envs, num_steps=32)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def add_cartpole_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the flags of ``funcnets rl cartpole`` to ``parser`` (a subcommand's parser)."""
    parser.add_argument("--algorithm", choices=ALGORITHMS, default="reinforce")
    parser.add_argument("--seeds", type=_positive_int, default=1, help="agents trained together")
    parser.add_argument("--seed", type=int, default=0, help="agent i uses fold_in(key(seed), i)")
    parser.add_argument("--iterations", type=_positive_int, help="updates (default: 300 / 2000)")
    parser.add_argument("--lr", type=_positive_float, help="Adam's learning rate (1e-3)")
    parser.add_argument("--num-envs", type=_positive_int, default=16, help="per update")
    parser.add_argument("--eval-episodes", type=_positive_int, default=100)
    parser.add_argument("--out", type=Path, help="writes DIR/cartpole.json and DIR/cartpole.png")
    parser.add_argument("--no-progress", action="store_true")


def run_cartpole_command(args: argparse.Namespace) -> int:
    """Runs ``funcnets rl cartpole`` from parsed arguments; prints a summary, returns 0."""
    iterations = args.iterations or _ITERATIONS[args.algorithm]
    lr = args.lr or _LR[args.algorithm]
    env = CartPole()
    agent = cartpole_agent(args.algorithm, iterations=iterations, lr=lr, num_envs=args.num_envs)
    result = {
        "environment": env.name,
        "algorithm": args.algorithm,
        "lr": lr,
        "num_envs": args.num_envs,
        **train_and_evaluate(
            env, agent, seeds=args.seeds, iterations=iterations, seed=args.seed,
            eval_episodes=args.eval_episodes, threshold=SOLVED,
            report=None if args.no_progress else print,
        ),
    }  # fmt: skip
    steps = np.mean(result["env_steps"])
    print(
        f"{result['algorithm']} on {result['environment']}: {result['solved']} of "
        f"{result['seeds']} seeds solved (mean return >= {SOLVED:g} over "
        f"{result['eval_episodes']} episodes); returns {result['eval_return']}; "
        f"{steps:,.0f} env steps per seed, {result['train_seconds']:.1f} s training "
        f"+ {result['compile_seconds']:.1f} s compiling"
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cartpole.json").write_text(json.dumps(result, indent=1))
        curves = result["curves"]
        plot_returns(
            curves["env_steps"], curves["return"], args.out / "cartpole.png",
            threshold=SOLVED, title=f"{result['algorithm']} on {result['environment']}",
        )  # fmt: skip
        print(f"wrote {args.out / 'cartpole.json'} and {args.out / 'cartpole.png'}")
    return 0


def cli_main(argv: Sequence[str] | None = None, prog: str = "funcnets rl cartpole") -> int:
    """``funcnets rl cartpole`` as a function of its arguments; returns the exit status.

    A bad argument exits with status 2, a usage line and one error line.

    Example:
        >>> import funcnets as fn
        >>> fn.rl.cli_main(["--seeds", "0"])
        2
    """
    parser = argparse.ArgumentParser(
        prog=prog, description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_cartpole_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 2
    return run_cartpole_command(args)
