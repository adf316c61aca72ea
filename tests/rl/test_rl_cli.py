"""`fn.rl.cli_main`, the ``funcnets rl cartpole`` command: arguments, output files, exit codes."""

import json

import numpy as np

import funcnets as fn
from funcnets.rl import cli


def fake_train_and_evaluate(
    env, agent, *, seeds, iterations, seed, eval_episodes, threshold, report
):
    """What `train_and_evaluate` returns, without training (its engine is tested elsewhere)."""
    calls.append(
        {"seeds": seeds, "iterations": iterations, "seed": seed, "episodes": eval_episodes}
    )
    if report is not None:
        report("iteration 1/1")
    returns = [500.0] * (seeds - 1) + [100.0]
    return {
        "seeds": seeds, "seed": seed, "iterations": iterations, "eval_episodes": eval_episodes,
        "eval_return": returns, "eval_return_greedy": returns, "threshold": threshold,
        "solved": seeds - 1, "solved_greedy": seeds - 1, "env_steps": [1000] * seeds,
        "compile_seconds": 1.0, "train_seconds": 2.0, "eval_seconds": 0.5, "backend": "cpu",
        "curves": {"return": np.full((seeds, iterations), 20.0).tolist(), "env_steps": np.full((seeds, iterations), 100).tolist()},
    }  # fmt: skip


calls: list[dict] = []


def test_bad_arguments_exit_with_status_2_and_one_error_line(capsys):
    for argv in (["--seeds", "0"], ["--algorithm", "dqn"], ["--lr", "-1"], ["--bogus"]):
        assert fn.rl.cli_main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[0].startswith("usage: funcnets rl cartpole") and "error:" in err[-1]
        assert "Traceback" not in "\n".join(err)


def test_a_run_prints_a_summary_and_writes_json_and_png(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cli, "train_and_evaluate", fake_train_and_evaluate)
    calls.clear()
    argv = ["--seeds", "3", "--iterations", "4", "--eval-episodes", "7", "--out", str(tmp_path)]
    assert fn.rl.cli_main(argv) == 0
    assert calls == [{"seeds": 3, "iterations": 4, "seed": 0, "episodes": 7}]
    out = capsys.readouterr().out
    assert "iteration 1/1" in out and "2 of 3 seeds solved" in out
    written = json.loads((tmp_path / "cartpole.json").read_text())
    assert written["algorithm"] == "reinforce" and written["environment"] == "CartPole-v1"
    assert written["lr"] == 1e-3 and written["num_envs"] == 16 and written["threshold"] == 475.0
    assert (tmp_path / "cartpole.png").stat().st_size > 1000


def test_defaults_per_algorithm(monkeypatch, capsys):
    monkeypatch.setattr(cli, "train_and_evaluate", fake_train_and_evaluate)
    calls.clear()
    assert fn.rl.cli_main(["--algorithm", "a2c", "--no-progress"]) == 0
    assert calls == [{"seeds": 1, "iterations": 2000, "seed": 0, "episodes": 100}]
    assert "iteration" not in capsys.readouterr().out
