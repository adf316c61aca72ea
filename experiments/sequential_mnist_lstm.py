"""Sequential MNIST: an LSTM reads each image row by row, at least 98.0% test accuracy.

Each 28x28 image is a sequence of 28 time steps of 28 pixels; the classifier is
`fn.models.lstm_classifier(128, 10)` (one LSTM of hidden size 128, forget-gate
bias 1, then a Dense head on the last hidden state; 81,674 params). Settings:
Adam with learning rate 1e-3 decayed by cosine to 1e-5, gradients clipped to
global norm 1.0 first (`fn.optim.clip_by_global_norm`, the classic guard against
exploding gradients in backpropagation through time), batch 128, 12 epochs,
seed 0, pixels in [0, 1]. 6,000 training images are held out as a validation
split (by the seed); the epoch with the best validation accuracy is the model
reported, and the test split is evaluated once, at the end.

    python experiments/sequential_mnist_lstm.py [--data-dir DIR] [--epochs N] [--smoke]

Writes experiments/results/sequential_mnist_lstm.{json,png}.
"""

import time

import jax
from common import arguments, best_on_validation, final_numbers, load_mnist, write_results

import funcnets as fn


def main() -> None:
    parser = arguments(__doc__, epochs=12)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()

    (x_train, y_train), validation, test, epochs = load_mnist(args)
    steps = epochs * -(-len(x_train) // 128)
    optimizer = fn.optim.chain(
        fn.optim.clip_by_global_norm(1.0),
        fn.optim.adam(fn.optim.cosine_decay_schedule(1e-3, steps, alpha=0.01)),
    )
    net = fn.models.lstm_classifier(args.hidden, 10)
    selector = best_on_validation(epochs)
    start = time.perf_counter()
    ts, history = fn.train.fit(
        net, fn.losses.sparse_cross_entropy, optimizer, (x_train, y_train),
        epochs=epochs, batch_size=128, key=jax.random.key(args.seed),
        val_data=validation, callbacks=[selector], progress=not args.smoke,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    numbers = final_numbers(net, ts, validation, test, selector)
    result = {
        "experiment": "Sequential MNIST (28 rows of 28 pixels), LSTM classifier",
        **numbers,
        "train_examples": len(y_train),
        "hidden": args.hidden,
        "epochs": epochs,
        "batch_size": 128,
        "optimizer": "clip_by_global_norm(1.0), adam, cosine decay 1e-3 -> 1e-5",
        "seed": args.seed,
        "train_seconds": round(seconds, 1),
    }
    write_results("sequential_mnist_lstm", result, history, args.smoke)
    print(
        f"validation accuracy {numbers['val_accuracy']:.2%} (epoch {numbers['selected_epoch']}"
        f" of {epochs}), test accuracy {numbers['test_accuracy']:.2%}, {seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
