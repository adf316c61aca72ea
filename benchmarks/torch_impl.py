"""The workloads in PyTorch, eager: the same layers, Adam with each of its kernels.

Imported only when ``import torch`` works; torch is never a funcnets
dependency. Models use PyTorch's own initialization in the benchmark (the
time of a step does not depend on the values); `load_funcnets_params` copies
a funcnets network's params in, for checking that the models agree.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import data, measure
from benchmarks.config import LEARNING_RATE, Settings

# Adam's implementations: a for-loop over tensors (the CPU default), one
# multi-tensor kernel per op (foreach), or one fused kernel.
ADAM = {
    "torch": {"foreach": False},
    "torch_foreach": {"foreach": True},
    "torch_fused": {"fused": True},
}


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


def network(workload: str) -> nn.Module:
    """The PyTorch twin of `benchmarks.workloads.network`."""
    if workload == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.ReLU(),
            nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10),
        )  # fmt: skip
    if workload == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
        )  # fmt: skip
    if workload == "lstm":
        return LSTMClassifier()
    raise ValueError(f"unknown workload {workload!r}")


def inputs(workload: str, x: np.ndarray, y: np.ndarray, device: str):
    """NHWC ``(n, 28, 28, 1)`` images as the model reads them: NCHW, or rows as time."""
    shape = (len(x), 28, 28) if workload == "lstm" else (len(x), 1, 28, 28)  # one channel
    xt = torch.from_numpy(np.ascontiguousarray(x.reshape(shape))).to(device)
    return xt, torch.from_numpy(y.astype(np.int64)).to(device)


def load_funcnets_params(model: nn.Module, workload: str, params: dict) -> None:
    """Copies a funcnets network's params (numpy arrays, workloads.py layout) into ``model``."""

    def t(a) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))

    def linear(module: nn.Linear, layer: dict) -> None:
        module.weight.copy_(t(layer["w"]).T)
        module.bias.copy_(t(layer["b"]))

    with torch.no_grad():
        if workload == "mlp":
            for module, name in zip(model[1::2], ("dense0", "dense1", "dense2")):
                linear(module, params[name])
        elif workload == "lenet5":
            for module, name in ((model[0], "c1"), (model[3], "c3")):
                module.weight.copy_(t(params[name]["w"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
                module.bias.copy_(t(params[name]["b"]))
            # funcnets flattens (h, w, c), PyTorch (c, h, w): reorder C5's input rows.
            c5 = np.asarray(params["c5"]["w"]).reshape(5, 5, 16, 120).transpose(2, 0, 1, 3)
            linear(model[7], {"w": c5.reshape(400, 120), "b": params["c5"]["b"]})
            linear(model[9], params["f6"])
            linear(model[11], params["output"])
        elif workload == "lstm":
            cell = params["lstm0"]
            model.lstm.weight_ih_l0.copy_(t(cell["wi"]).T)
            model.lstm.weight_hh_l0.copy_(t(cell["wh"]).T)
            model.lstm.bias_ih_l0.copy_(t(cell["b"]))
            model.lstm.bias_hh_l0.zero_()
            linear(model.head, params["head"])
        else:
            raise ValueError(f"unknown workload {workload!r}")


def make_step(model: nn.Module, **adam):
    """``step(None, (x, y)) -> loss``: zero grads, forward, cross-entropy, backward, Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, **adam)

    def step(_, batch):
        x, y = batch
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def run(workload: str, settings: Settings) -> dict:
    """Eager steps with each Adam kernel, then an epoch with the default Adam."""
    device = "cuda" if settings.device == "gpu" else "cpu"
    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)

    def sync(value):
        if device == "cuda":
            torch.cuda.synchronize()
        return value

    x, y = data.synthetic(settings.batch * settings.step_batches, settings.seed + 1)
    batches = [inputs(workload, *batch, device) for batch in data.batches(x, y, settings.batch)]
    rows, skipped = {}, {}
    for row, adam in ADAM.items():
        torch.manual_seed(settings.seed)
        model = network(workload).to(device)
        try:
            step = make_step(model, **adam)
            step(None, batches[0])
        except (RuntimeError, ValueError) as error:  # e.g. no fused Adam on this device
            skipped[row] = f"{adam}: {error}"
            continue
        torch.manual_seed(settings.seed)
        model = network(workload).to(device)
        rows[row], _ = measure.time_steps(make_step(model, **adam), None, batches, settings, sync)
        print(f"  torch {workload} {row}: {rows[row]['step_ms']:.3f} ms/step", flush=True)
    peak_steps = measure.peak_rss_mb()

    x, y = data.synthetic(settings.epoch_samples, settings.seed + 2)
    epoch_batches = [inputs(workload, *b, device) for b in data.batches(x, y, settings.batch)]
    torch.manual_seed(settings.seed)
    step = make_step(network(workload).to(device))  # torch.optim.Adam's default kernel
    rows["epoch_torch"], _ = measure.time_epochs(step, None, epoch_batches, settings, sync)
    rows["epoch_torch"]["adam"] = "default"
    print(f"  torch {workload} epoch: {rows['epoch_torch']['epoch_s']:.3f} s", flush=True)
    versions = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": device,
    }
    return {
        "rows": rows,
        "peak_rss_mb_steps": peak_steps,
        "versions": versions,
        "skipped_rows": skipped,
    }
