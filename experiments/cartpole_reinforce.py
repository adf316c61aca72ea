"""REINFORCE with a baseline on CartPole-v1, 10 seeds trained in one compiled call (2 CPU cores).

The environment is `fn.rl.CartPole`, Gymnasium's CartPole-v1 as pure JAX
functions (tests/rl/test_cartpole.py checks it against Gymnasium step by
step). Settings (stated, not inherited):

- REINFORCE (Williams 1992) with a learned value baseline: policy
  `fn.models.mlp([64, 64, 2], activation=fn.tanh)` (logits of the two
  actions), value `fn.models.mlp([64, 64, 1], activation=fn.tanh)`;
  discounted returns with gamma 0.99, advantages ``G_t - V(s_t)`` standardised
  over each batch, no entropy bonus; one Adam step (learning rate 1e-3) per
  iteration on ``policy loss + 0.5 * value loss``; 16 full episodes per
  iteration; 300 iterations. Each iteration is a `lax.scan` of 500 batched
  steps; the 300 iterations are one `lax.scan` under `jax.jit`, and `jax.vmap`
  trains the 10 agents (seeds 0-9: keys ``fold_in(key(0), i)``) in one call.
- A2C (Mnih et al. 2016), for comparison: the same two networks, 16
  environments x 32 steps per update (n-step returns, lambda 1), value loss
  0.5, entropy bonus 0.01, Adam 1e-3 decayed linearly to 0 over 2,000 updates
  (``--no-a2c`` skips it).

Evaluation: each trained agent plays 100 new episodes, sampling its actions
from its policy; CartPole-v1 counts as solved at a mean return of 475 (its
``reward_threshold`` in Gymnasium). The mean return when taking the most
likely action is reported alongside. Environment steps are the steps of
the episodes trained on (REINFORCE's rollouts also compute, masked out,
the steps after each episode's end up to 500).

    python experiments/cartpole_reinforce.py [--seeds N] [--seed S] [--no-a2c] [--smoke]

Writes experiments/results/cartpole_reinforce.{json,png} (the figure: return
against environment steps, each seed, the mean and the min-max band).
"""

import argparse
import json
import re
from pathlib import Path

import jax
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import funcnets as fn

RESULTS = Path(__file__).parent / "results"
SOLVED = 475.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-a2c", action="store_true", help="REINFORCE only")
    parser.add_argument("--smoke", action="store_true", help="2 seeds, 10 iterations (for CI)")
    args = parser.parse_args()

    env = fn.rl.CartPole()
    policy = fn.models.mlp([64, 64, env.num_actions], activation=fn.tanh)
    value = fn.models.mlp([64, 64, 1], activation=fn.tanh)
    seeds, iterations, num_envs, episodes = args.seeds, 300, 16, 100
    if args.smoke:
        seeds, iterations, num_envs, episodes = 2, 10, 4, 5
    reinforce = fn.rl.reinforce(
        env, policy, fn.optim.adam(1e-3), value=value, num_envs=num_envs,
        gamma=0.99, value_coef=0.5, entropy_coef=0.0, normalize=True,
    )  # fmt: skip
    say = None if args.smoke else print
    runs = {}
    runs["reinforce"] = fn.rl.train_and_evaluate(
        env, reinforce, seeds=seeds, iterations=iterations, seed=args.seed,
        eval_episodes=episodes, threshold=SOLVED, report=say,
    )  # fmt: skip
    settings = {
        "reinforce": {
            "policy": "mlp [64, 64, 2], tanh", "value": "mlp [64, 64, 1], tanh",
            "optimizer": "adam 1e-3", "episodes_per_iteration": num_envs, "gamma": 0.99,
            "value_coef": 0.5, "entropy_coef": 0.0, "normalize_advantages": True,
        }
    }  # fmt: skip
    if not (args.no_a2c or args.smoke):
        a2c_iterations = 2000
        a2c = fn.rl.a2c(
            env, policy, value, fn.optim.adam(fn.optim.linear_schedule(1e-3, 0.0, a2c_iterations)),
            num_envs=16, num_steps=32, gamma=0.99, gae_lambda=1.0, value_coef=0.5,
            entropy_coef=0.01,
        )  # fmt: skip
        runs["a2c"] = fn.rl.train_and_evaluate(
            env, a2c, seeds=seeds, iterations=a2c_iterations, seed=args.seed,
            eval_episodes=episodes, threshold=SOLVED, report=say,
        )  # fmt: skip
        settings["a2c"] = {
            "policy": "mlp [64, 64, 2], tanh", "value": "mlp [64, 64, 1], tanh",
            "optimizer": "adam 1e-3, linear decay to 0", "num_envs": 16, "num_steps": 32,
            "gamma": 0.99, "gae_lambda": 1.0, "value_coef": 0.5, "entropy_coef": 0.01,
        }  # fmt: skip

    name = "cartpole_reinforce_smoke" if args.smoke else "cartpole_reinforce"
    result = {
        "experiment": "REINFORCE with a baseline on CartPole-v1 (and A2C)",
        "environment": env.name,
        "solved_threshold": SOLVED,
        "settings": settings,
        **runs,
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(result, indent=1)  # then each list of numbers on one line:
    text = re.sub(
        r"\[[-0-9.,\s]*\]", lambda m: "[" + " ".join(m.group(0)[1:-1].split()) + "]", text
    )
    (RESULTS / f"{name}.json").write_text(text)
    figure = Figure(figsize=(7 * len(runs), 4.5))
    FigureCanvasAgg(figure)
    for axes, (algorithm, run) in zip(
        figure.subplots(1, len(runs), squeeze=False)[0], runs.items()
    ):
        fn.rl.plot_returns(
            run["curves"]["env_steps"], run["curves"]["return"], axes=axes, threshold=SOLVED,
            title=f"{algorithm} on {env.name}: {run['solved']} of {seeds} seeds solved",
        )  # fmt: skip
    figure.savefig(RESULTS / f"{name}.png", dpi=120)

    for algorithm, run in runs.items():
        steps = sum(run["env_steps"]) / seeds
        print(
            f"{algorithm}: {run['solved']} of {seeds} seeds solved (sampled actions; "
            f"{run['solved_greedy']} taking the most likely), evaluation returns "
            f"{run['eval_return']}, {steps:,.0f} env steps per seed, "
            f"{run['train_seconds']:.1f} s training + {run['compile_seconds']:.1f} s compiling"
        )


if __name__ == "__main__":
    main()
