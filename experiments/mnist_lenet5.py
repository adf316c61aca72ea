"""LeNet-5 on MNIST (LeCun et al. 1998): at least 99.0% test accuracy on 2 CPU cores.

Settings (stated, not inherited): the `fn.models.lenet5` architecture (tanh,
average pooling, SAME-padded C1 for 28x28 inputs, 61,706 params), Adam with
learning rate 1e-3 decayed by cosine to 1e-5 over the run, batch 128,
25 epochs, seed 0, no augmentation, pixels scaled to [0, 1]. The test split
(10,000 images) is the validation set evaluated after every epoch.

    python experiments/mnist_lenet5.py [--data-dir DIR] [--epochs N] [--smoke]

Writes experiments/results/mnist_lenet5.{json,png}.
"""

import argparse
import json
import time
from pathlib import Path

import jax

import funcnets as fn

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, help="root holding mnist/ (default $FUNCNETS_DATA)"
    )
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="2,000 samples, 1 epoch (for CI)")
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = fn.data.load_mnist(root=args.data_dir)
    epochs = args.epochs
    if args.smoke:
        (x_train, y_train), (x_test, y_test), epochs = (
            (x_train[:2000], y_train[:2000]),
            (x_test[:500], y_test[:500]),
            1,
        )
    steps = epochs * -(-len(x_train) // 128)
    optimizer = fn.optim.adam(fn.optim.cosine_decay_schedule(1e-3, steps, alpha=0.01))
    net = fn.models.lenet5()
    start = time.perf_counter()
    ts, history = fn.train.fit(
        net, fn.losses.sparse_cross_entropy, optimizer, (x_train, y_train),
        epochs=epochs, batch_size=128, key=jax.random.key(args.seed),
        val_data=(x_test, y_test), progress=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    test = fn.train.evaluate(net, ts, (x_test, y_test), loss_fn=fn.losses.sparse_cross_entropy)
    result = {
        "experiment": "LeNet-5 on MNIST",
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "epochs": epochs,
        "batch_size": 128,
        "optimizer": "adam, cosine decay 1e-3 -> 1e-5",
        "seed": args.seed,
        "train_seconds": round(seconds, 1),
        "backend": jax.default_backend(),
        "smoke": args.smoke,
        "history": dict(history),
    }
    name = "mnist_lenet5_smoke" if args.smoke else "mnist_lenet5"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    history.plot(RESULTS / f"{name}.png")
    print(f"test accuracy {test['accuracy']:.2%} after {epochs} epochs, {seconds:.0f} s")


if __name__ == "__main__":
    main()
