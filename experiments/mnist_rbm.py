"""RBMs on MNIST: test log-likelihood by AIS after CD-1, CD-k and PCD (Salakhutdinov & Murray 2008).

Salakhutdinov & Murray, "On the quantitative analysis of deep belief
networks" (ICML 2008), estimated the partition function of RBMs with 500
hidden units by annealed importance sampling and found the test
log-likelihood to depend strongly on the training rule: -125.53 nats per
digit after CD-1, -105.50 after CD-3 and -86.34 after CD-25 (their Table 2).
This script trains three `rbm(784, 500)` models, with CD-1, CD-k and
persistent CD (Tieleman 2008), and estimates each one's log Z the same way.

Settings (stated, not inherited):

- Data: MNIST binarised once, pixel > 0.5 -> 1 (a fixed threshold; no
  stochastic binarisation). 6,000 of the 60,000 training images are held out
  as a validation split (`fn.data.split`, by the seed); the 10,000 test
  images are evaluated once, at the end.
- Model: 784 binary visible and 500 binary hidden units; weights
  N(0, 0.01^2), hidden biases 0, visible biases the logits of the training
  pixels' means (clipped to [1e-3, 1 - 1e-3]).
- Training: minibatches of 100, SGD with momentum 0.9, weight decay 2e-4 on
  the weights (added to the gradient), the learning rate decayed linearly
  from its initial value to 0 over the run: CD-1 (0.05, 60 epochs); CD-k
  with k = 25, S&M's best model (0.05, 40 epochs); PCD-1 with 100
  persistent chains, one Gibbs step per update (0.03, 100 epochs).
- The initial learning rates come from short runs on 2 CPU cores (3 epochs
  on 20,000 training images, scored on 2,000 validation images by AIS with
  2,000 inverse temperatures): PCD 0.03 (-89.0 nats) over 0.05 (-94.0) and
  0.1 (-116.1); CD-1 0.05 (-103.1) and 0.1 (-102.3) over 0.03 (-107.0);
  CD-25 takes CD-1's. ``--sweep`` repeats this at full size on a GPU (5
  epochs of all 54,000 images per rate, scored by the final AIS; results in
  results/mnist_rbm_sweep.json). The epochs fit the budget: about 100 s of
  training and AIS on one H100 (estimated, not measured).
- Epoch selection on the validation split: after every epoch a cheap AIS
  (100 runs, 1,000 inverse temperatures; the same draws every epoch)
  estimates log Z, and the epoch with the best validation log-likelihood
  is kept (`fn.train.EarlyStopping`, restore_best). The cheap estimate
  underestimates log Z by several nats; it ranks epochs of one run only.
- Evaluation: AIS with 100 runs and 14,500 inverse temperatures spaced as in
  S&M (1e-3 on [0, 0.5), 1e-4 on [0.5, 0.9), 1e-5 on [0.9, 1]), from the
  base-rate RBM fitted to the training pixels; log p(v) = -F(v) - log Z,
  averaged over the test set. The ± is three standard errors of log Z (S&M's
  log(Z ± 3 sigma)); a second AIS with twice the inverse temperatures
  (``log_z_with_2x_betas``) shows whether the estimate has converged. AIS
  underestimates log Z on average, so these likelihoods err, if anything,
  on the optimistic side, as S&M's do.
- Figures: validation log-likelihood per epoch (results/mnist_rbm.png), the
  filters of the best model (mnist_rbm_filters.png), and 10 Gibbs chains of
  each model run for 10,000 steps from independent pixels at the base rates,
  shown as p(v | h) at steps 0, 1, 10, 100, 1,000 and 10,000
  (mnist_rbm_samples.png).

    python experiments/mnist_rbm.py [--data-dir DIR] [--seed S] [--epochs N] [--smoke]
    python experiments/mnist_rbm.py --sweep   # the learning-rate sweep

Writes experiments/results/mnist_rbm.json and the PNGs above.
"""

import json
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from common import RESULTS, arguments, load_mnist

import funcnets as fn
from funcnets.models.rbm import base_rate_bias, rbm

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

#: S&M 2008, Table 2: test log-likelihood (nats) of RBMs with 500 hidden units.
ANCHORS = {"CD-1": -125.53, "CD-3": -105.50, "CD-25": -86.34}
GOAL = -90.0
#: method -> (initial learning rate, epochs), chosen as the docstring says.
DEFAULTS = {"CD-1": (0.05, 60), "CD-k": (0.05, 40), "PCD": (0.03, 100)}
SNAPSHOTS = (0, 1, 10, 100, 1000, 10000)
SWEEP_LRS = (0.01, 0.03, 0.1)


def binarize(x: np.ndarray) -> jax.Array:
    """``(N, 28, 28, 1)`` in [0, 1] -> ``(N, 784)`` of 0.0 / 1.0 (threshold 0.5), on the device."""
    return jnp.asarray((np.asarray(x).reshape(len(x), -1) > 0.5).astype(np.float32))


def optimizer(lr: float, steps: int, args) -> fn.optim.GradientTransformation:
    """SGD with momentum, weight decay on ``w`` only, and a linear decay of ``lr`` to 0."""
    decay = fn.optim.add_decayed_weights(
        args.weight_decay, mask={"w": True, "visible_bias": False, "hidden_bias": False}
    )
    schedule = fn.optim.linear_schedule(lr, 0.0, steps)
    return fn.optim.chain(decay, fn.optim.sgd(schedule, momentum=args.momentum))


def ais_log_likelihood(model, params, x, key, runs, betas, base) -> tuple[float, float, float]:
    """``(mean log p(x), log Z, spread)`` with log Z from AIS."""
    log_z, spread = model.ais_log_partition(params, key, runs=runs, betas=betas, data=base)
    return float(model.log_likelihood(params, x, log_z)), float(log_z), float(spread)


class EpochTimer(fn.train.Callback):
    """Wall-clock time at the end of each epoch, for the seconds an epoch takes once compiled."""

    def on_train_begin(self, ts):
        self.times = [time.perf_counter()]

    def on_epoch_end(self, epoch, ts, logs):
        jax.block_until_ready(ts.params)
        self.times.append(time.perf_counter())
        return False

    def seconds_per_epoch(self) -> float:
        """The median epoch after the first (which compiles), or the first if it is alone."""
        steps = np.diff(self.times)
        return float(np.median(steps[1:] if len(steps) > 1 else steps))


def train(name, model, lr, epochs, x_train, x_val, args, select=True):
    """Trains one RBM; with ``select``, keeps the epoch of best (cheap) validation likelihood."""
    steps = epochs * -(-len(x_train) // args.batch_size)
    opt = optimizer(lr, steps, args)
    ts = model.init(jax.random.key(args.seed), (args.batch_size, 784), opt, data=x_train)
    val_key = jax.random.fold_in(jax.random.key(args.seed), 1)  # the same AIS draws each epoch
    start = time.perf_counter()

    def validate(ts):
        ll, log_z, _ = ais_log_likelihood(
            model, ts.params, x_val, val_key, args.val_runs, args.val_betas, x_train
        )
        if not args.smoke:
            print(
                f"{name} lr {lr} epoch {int(ts.epoch)}: validation {ll:.2f} nats "
                f"(log Z {log_z:.2f}), {time.perf_counter() - start:.1f} s"
            )
        return {"val_log_likelihood": ll}

    selector = fn.train.EarlyStopping("val_log_likelihood", patience=epochs, mode="max")
    timer = EpochTimer()
    ts, history = fn.train.run(
        model.step(opt),
        ts,
        x_train,
        epochs=epochs,
        batch_size=args.batch_size,
        callbacks=[timer, selector] if select else [timer],
        validate=validate if select else None,
        progress=False,
    )
    jax.block_until_ready(ts)
    selected = selector.best_epoch if select else epochs
    return ts, history, selected, time.perf_counter() - start, timer.seconds_per_epoch()


def models(args) -> dict:
    """The three training rules, as `rbm` models."""
    return {
        "CD-1": rbm(784, args.hidden, k=1),
        "CD-k": rbm(784, args.hidden, k=args.k),
        "PCD": rbm(784, args.hidden, k=1, persistent=True, chains=args.chains),
    }


def sweep(args, x_train, x_val) -> None:
    """Short runs over ``SWEEP_LRS``, scored on validation by the final AIS (S&M's 14,500 betas).

    Not by the cheap per-epoch estimate: with 1,000 betas, AIS underestimates
    log Z by several nats, and by more for sharper models, which would favour
    them.
    """
    key = jax.random.fold_in(jax.random.key(args.seed), 2)
    scores, seconds = {}, {}
    for method, model in models(args).items():
        scores[method] = {}
        for lr in SWEEP_LRS:
            ts, _, _, took, per_epoch = train(
                method, model, lr, args.sweep_epochs, x_train, x_val, args, select=False
            )
            ll, _, _ = ais_log_likelihood(
                model, ts.params, x_val, key, args.ais_runs, args.ais_betas, x_train
            )
            scores[method][lr], seconds[method] = ll, per_epoch
            print(f"sweep {method} lr {lr}: validation {ll:.2f} nats, {took:.1f} s")
    best = {m: max(s, key=s.get) for m, s in scores.items()}
    result = {
        "experiment": "RBM learning-rate sweep on MNIST (validation split)",
        "epochs_per_run": args.sweep_epochs,
        "k": args.k,
        "hidden": args.hidden,
        "validation_log_likelihood": {
            m: {str(lr): v for lr, v in s.items()} for m, s in scores.items()
        },
        "best_lr": best,
        "seconds_per_epoch": seconds,
        "estimator": f"AIS, {args.ais_runs} runs, {args.ais_betas} betas",
        "seed": args.seed,
        "backend": jax.default_backend(),
        "smoke": args.smoke,
    }
    name = "mnist_rbm_sweep_smoke" if args.smoke else "mnist_rbm_sweep"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    print("best learning rates:", best, "seconds per epoch:", seconds)


def tiles(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``(rows * cols, 784)`` -> one ``(rows * 29, cols * 29)`` image with 1-pixel gaps."""
    out = np.ones((rows * 29, cols * 29))
    for i, image in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        out[r * 29 : r * 29 + 28, c * 29 : c * 29 + 28] = image.reshape(28, 28)
    return out


def chain_snapshots(model, params, key, x_train, snapshots) -> np.ndarray:
    """10 chains from base-rate pixels; p(v | h) at each of ``snapshots`` Gibbs steps.

    Returns ``(10 * len(snapshots), 784)``, chain by chain (a row per chain).
    """
    base = jax.nn.sigmoid(base_rate_bias(x_train))
    v = jax.random.bernoulli(jax.random.fold_in(key, 0), base, (10, 784)).astype(jnp.float32)
    shown, done = [], 0
    for i, steps in enumerate(snapshots):
        v = model.gibbs(params, jax.random.fold_in(key, i + 1), v, steps - done)
        done = steps
        h_key = jax.random.fold_in(key, 1000 + i)
        h = jax.random.bernoulli(h_key, model.hidden_probs(params, v)).astype(jnp.float32)
        shown.append(np.asarray(model.visible_probs(params, h)))
    return np.stack(shown, axis=1).reshape(-1, 784)


def figures(name, results, trained, args, x_train) -> None:
    """The validation curves, the best model's filters, and long Gibbs chains of each model."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results.values():
        curve = r["history"]["val_log_likelihood"]
        ax.plot(range(1, len(curve) + 1), curve, ".-", label=f"{r['label']} (test {r['test']:.1f})")
    lines = {**{f"S&M {label}": value for label, value in ANCHORS.items()}, "goal": GOAL}
    for label, value in lines.items():
        ax.axhline(value, ls=":" if label != "goal" else "--", lw=1, color="gray")
        ax.text(
            0.99,
            value,
            label,
            transform=ax.get_yaxis_transform(),
            fontsize=7,
            color="gray",
            ha="right",
            va="bottom",
        )
    ax.set(
        xlabel="epoch",
        ylabel="validation log-likelihood (nats, cheap AIS)",
        title=f"RBM(784, {args.hidden}) on binarised MNIST",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=120)
    plt.close(fig)

    best = max(results, key=lambda m: results[m]["val"])
    w = np.asarray(trained[best].params["w"]).T[:100]
    w = (w - w.min(axis=1, keepdims=True)) / np.ptp(w, axis=1, keepdims=True).clip(1e-12)
    fig, ax = plt.subplots(figsize=(6, 6.3))
    ax.imshow(tiles(w, 10, 10), cmap="gray")
    ax.set_title(f"{results[best]['label']}: weights of the first 100 hidden units", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}_filters.png", dpi=120)
    plt.close(fig)

    snapshots = SNAPSHOTS if not args.smoke else SNAPSHOTS[:4]
    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 7))
    for i, (ax, (method, r)) in enumerate(zip(axes, results.items())):
        key = jax.random.fold_in(jax.random.key(args.seed), 10 + i)
        images = chain_snapshots(r["model"], trained[method].params, key, x_train, snapshots)
        ax.imshow(tiles(images, 10, len(snapshots)), cmap="gray", vmin=0, vmax=1)
        steps = ", ".join(f"{s:,}" for s in snapshots)
        ax.set_title(f"{r['label']}: 10 chains, p(v|h) after\n{steps} Gibbs steps", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}_samples.png", dpi=120)
    plt.close(fig)


def main() -> None:
    parser = arguments(__doc__, epochs=0)
    parser.add_argument("--k", type=int, default=25, help="Gibbs steps of CD-k")
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--chains", type=int, default=100, help="persistent chains of PCD")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=2e-4)
    for method, (lr, epochs) in DEFAULTS.items():
        flag = method.lower().replace("-", "")
        parser.add_argument(f"--lr-{flag}", type=float, default=lr)
        parser.add_argument(f"--epochs-{flag}", type=int, default=epochs)
    parser.add_argument("--ais-runs", type=int, default=100)
    parser.add_argument("--ais-betas", type=int, default=14500)
    parser.add_argument("--val-runs", type=int, default=100)
    parser.add_argument("--val-betas", type=int, default=1000)
    parser.add_argument("--sweep", action="store_true", help="the learning-rate sweep")
    parser.add_argument("--sweep-epochs", type=int, default=5)
    args = parser.parse_args()
    (x_train, _), (x_val, _), (x_test, _), epochs = load_mnist(args)
    if args.smoke:  # seconds on a CPU: every code path, tiny numbers
        args.k, args.hidden, args.chains = 2, 50, 20
        args.ais_runs, args.ais_betas, args.val_runs, args.val_betas = 8, 50, 8, 50
        args.sweep_epochs = 1
    if epochs:  # --epochs N (or --smoke: 1) trains every model N epochs
        for flag in ("cd1", "cdk", "pcd"):
            setattr(args, f"epochs_{flag}", epochs)
    x_train, x_val, x_test = binarize(x_train), binarize(x_val), binarize(x_test)
    RESULTS.mkdir(exist_ok=True)
    if args.sweep:
        sweep(args, x_train, x_val)
        return

    start = time.perf_counter()
    results, trained = {}, {}
    ais_key = jax.random.fold_in(jax.random.key(args.seed), 3)
    check_key = jax.random.fold_in(jax.random.key(args.seed), 4)
    for method, model in models(args).items():
        flag = method.lower().replace("-", "")
        lr, epochs = getattr(args, f"lr_{flag}"), getattr(args, f"epochs_{flag}")
        label = f"CD-{model.k}" if method == "CD-k" else method
        ts, history, selected, seconds, per_epoch = train(
            label, model, lr, epochs, x_train, x_val, args
        )
        ais_start = time.perf_counter()
        test, log_z, spread = ais_log_likelihood(
            model, ts.params, x_test, ais_key, args.ais_runs, args.ais_betas, x_train
        )
        val = float(model.log_likelihood(ts.params, x_val, log_z))
        train_ll = float(model.log_likelihood(ts.params, x_train[:10000], log_z))
        # Has AIS converged? The same estimate with twice the inverse temperatures.
        _, log_z_2x, _ = ais_log_likelihood(
            model, ts.params, x_test[:1], check_key, args.ais_runs, 2 * args.ais_betas, x_train
        )
        trained[method] = ts
        results[method] = {
            "label": label,
            "model": model,
            "k": model.k,
            "persistent": model.persistent,
            "chains": args.chains if model.persistent else None,
            "initial_lr": lr,
            "epochs": epochs,
            "selected_epoch": selected,
            "test": test,
            "val": val,
            "train_10000": train_ll,
            "log_z": log_z,
            "log_z_spread_3se": spread,
            "log_z_with_2x_betas": log_z_2x,
            "anchor_salakhutdinov_murray": ANCHORS.get(label),
            "train_seconds": round(seconds, 1),
            "seconds_per_epoch": round(per_epoch, 3),
            "ais_seconds": round(time.perf_counter() - ais_start, 1),
            "history": dict(history),
        }
        print(
            f"{label}: test {test:.2f} ± {spread:.2f} nats (validation {val:.2f}, train "
            f"{train_ll:.2f}; epoch {selected} of {epochs}; S&M {ANCHORS.get(label)}), "
            f"log Z {log_z:.2f} ({log_z_2x:.2f} with 2x betas), {seconds:.0f} s + AIS"
        )
    total = time.perf_counter() - start
    name = "mnist_rbm_smoke" if args.smoke else "mnist_rbm"
    figures(name, results, trained, args, x_train)
    best = max(results, key=lambda m: results[m]["val"])
    summary = {
        "experiment": "RBM(784, 500) on binarised MNIST: CD-1, CD-k, PCD; log Z by AIS",
        "reference": "Salakhutdinov & Murray 2008, Table 2 (CD-1 -125.53, CD-3 -105.50, "
        "CD-25 -86.34 nats); Tieleman 2008 (PCD)",
        "goal": f"best test log-likelihood >= {GOAL} nats",
        "best": results[best]["label"],
        "best_test_log_likelihood": results[best]["test"],
        "goal_met": results[best]["test"] >= GOAL,
        "results": {m: {k: v for k, v in r.items() if k != "model"} for m, r in results.items()},
        "settings": {
            "binarization": "threshold 0.5",
            "hidden": args.hidden,
            "batch_size": args.batch_size,
            "optimizer": f"sgd momentum {args.momentum}, weight decay {args.weight_decay} on w, "
            "learning rate linear to 0",
            "selection": f"best epoch by validation AIS ({args.val_runs} runs, "
            f"{args.val_betas} betas)",
            "ais": f"{args.ais_runs} runs, {args.ais_betas} betas (S&M schedule), base rates "
            "of the training pixels",
            "train_examples": int(x_train.shape[0]),
            "val_examples": int(x_val.shape[0]),
            "test_examples": int(x_test.shape[0]),
        },
        "seed": args.seed,
        "total_seconds": round(total, 1),
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "smoke": args.smoke,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=1))
    print(
        f"best: {results[best]['label']} {results[best]['test']:.2f} nats "
        f"(goal {GOAL}); {total:.0f} s for training and AIS"
    )


if __name__ == "__main__":
    main()
