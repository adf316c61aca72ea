"""The workloads in PyTorch, eager: the same layers, Adam with each of its kernels.

Imported only when ``import torch`` works; torch is never a funcnets
dependency. PyTorch runs as shipped: its own thread count and OpenMP settings
(unless ``Settings.torch_threads`` asks otherwise, for a separately labelled
row), ``torch.optim.Adam``'s default kernel in the headline row (a for-loop
over tensors on CPU, ``foreach`` on CUDA), then ``foreach=True`` and
``fused=True``. bf16 is ``torch.autocast(device, torch.bfloat16)`` around the
forward pass and the loss, PyTorch's mixed precision (float32 params and Adam
state; autocast leaves the GRU in float32).

Models use PyTorch's own initialization in the benchmark (the time of a step
does not depend on the values); `load_funcnets_params` copies a funcnets
network's params in, for checking that the models agree. Two differences of
layout from funcnets that cost nothing: PyTorch's LSTM has two bias vectors
(512 more parameters), and a stride-2 3x3 convolution (ResNet-20) pads one
pixel on each side (``padding=1``, what PyTorch users write) where funcnets'
and XLA's ``"SAME"`` pads only the far side: the same shapes and FLOPs.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import data, measure
from benchmarks.config import LEARNING_RATE, Settings
from benchmarks.workloads import VGG

# Adam's implementations: PyTorch's default (a for-loop over tensors on CPU, foreach on
# CUDA), one multi-tensor kernel per op (foreach), or one fused kernel.
ADAM = {
    "torch": {},
    "torch_foreach": {"foreach": True},
    "torch_fused": {"fused": True},
}
RECURRENT = ("lstm", "gru")


class RecurrentClassifier(nn.Module):
    """Image rows as 28 time steps of 28 features, an LSTM or GRU of 128, Linear on the last h."""

    def __init__(self, rnn: type[nn.LSTM] | type[nn.GRU]) -> None:
        super().__init__()
        self.rnn = rnn(28, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.rnn(x)
        h = h[0] if isinstance(h, tuple) else h  # the LSTM's (h, c)
        return self.head(h[-1])


class BasicBlock(nn.Module):
    """``relu(F(x) + shortcut(x))``, ``F`` = conv3x3 BN relu conv3x3 BN; a 1x1 projection
    (and BN) as the shortcut where the block halves the maps (He et al.'s option B)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(f + self.shortcut(x))


def resnet20() -> nn.Module:
    """The CIFAR ResNet-20 of `fn.models.resnet(20, 10)` on one input channel."""
    blocks, cin = [], 16
    for cout in (16, 32, 64):
        for i in range(3):
            blocks.append(BasicBlock(cin, cout, 2 if cout > 16 and i == 0 else 1))
            cin = cout
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )  # fmt: skip


def vgg() -> nn.Module:
    """`benchmarks.workloads.VGG`: conv3x3 (no bias) + BatchNorm + ReLU, 2x2 max-pools."""
    layers: list[nn.Module] = []
    cin, side = 1, 28
    for item in VGG:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            side //= 2
        else:
            layers += [nn.Conv2d(cin, item, 3, padding=1, bias=False), nn.BatchNorm2d(item)]
            layers.append(nn.ReLU())
            cin = item
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin * side * side, 10))


def network(workload: str) -> nn.Module:
    """The PyTorch twin of `benchmarks.workloads.network`."""
    if workload == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.ReLU(),
            nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10),
        )  # fmt: skip
    if workload in ("lenet5", "lenet5_relu"):
        act, pool = (nn.Tanh, nn.AvgPool2d) if workload == "lenet5" else (nn.ReLU, nn.MaxPool2d)
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), act(), pool(2),
            nn.Conv2d(6, 16, 5), act(), pool(2), nn.Flatten(),
            nn.Linear(400, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, 10),
        )  # fmt: skip
    if workload == "vgg":
        return vgg()
    if workload == "resnet20":
        return resnet20()
    if workload in RECURRENT:
        return RecurrentClassifier(nn.LSTM if workload == "lstm" else nn.GRU)
    raise ValueError(f"unknown workload {workload!r}")


def inputs(workload: str, x: np.ndarray, y: np.ndarray, device: str):
    """NHWC ``(n, 28, 28, 1)`` images as the model reads them: NCHW, or rows as time."""
    shape = (len(x), 28, 28) if workload in RECURRENT else (len(x), 1, 28, 28)  # one channel
    xt = torch.from_numpy(np.ascontiguousarray(x.reshape(shape))).to(device)
    return xt, torch.from_numpy(y.astype(np.int64)).to(device)


def _flattened_hwc(w: np.ndarray, side: int) -> np.ndarray:
    """A Dense kernel after funcnets' (h, w, c) flatten, reordered for PyTorch's (c, h, w)."""
    channels = w.shape[0] // (side * side)
    w = w.reshape(side, side, channels, -1).transpose(2, 0, 1, 3)
    return w.reshape(side * side * channels, -1)


def load_funcnets_params(model: nn.Module, workload: str, params: dict) -> None:
    """Copies a funcnets network's params (numpy arrays, workloads.py layout) into ``model``.

    For every workload but ResNet-20 (whose stride-2 convolutions pad differently).
    """

    def t(a) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32))

    def linear(module: nn.Linear, layer: dict) -> None:
        module.weight.copy_(t(layer["w"]).T)
        module.bias.copy_(t(layer["b"]))

    def conv(module: nn.Conv2d, layer: dict) -> None:
        module.weight.copy_(t(layer["w"]).permute(3, 2, 0, 1))  # HWIO -> OIHW
        if module.bias is not None:
            module.bias.copy_(t(layer["b"]))

    with torch.no_grad():
        if workload == "mlp":
            for module, name in zip(model[1::2], ("dense0", "dense1", "dense2")):
                linear(module, params[name])
        elif workload in ("lenet5", "lenet5_relu"):
            conv(model[0], params["c1"])
            conv(model[3], params["c3"])
            c5 = _flattened_hwc(np.asarray(params["c5"]["w"]), 5)
            linear(model[7], {"w": c5, "b": params["c5"]["b"]})
            linear(model[9], params["f6"])
            linear(model[11], params["output"])
        elif workload == "vgg":
            convs = [m for m in model if isinstance(m, nn.Conv2d)]
            norms = [m for m in model if isinstance(m, nn.BatchNorm2d)]
            for i, (c, bn) in enumerate(zip(convs, norms), start=1):
                conv(c, params[f"conv{i}"])
                bn.weight.copy_(t(params[f"bn{i}"]["scale"]))
                bn.bias.copy_(t(params[f"bn{i}"]["bias"]))
            head = params["head"]
            linear(model[-1], {"w": _flattened_hwc(np.asarray(head["w"]), 3), "b": head["b"]})
        elif workload in RECURRENT:
            cell = params[f"{workload}0"]
            model.rnn.weight_ih_l0.copy_(t(cell["wi"]).T)
            model.rnn.weight_hh_l0.copy_(t(cell["wh"]).T)
            if workload == "lstm":  # funcnets' one bias is PyTorch's two summed
                model.rnn.bias_ih_l0.copy_(t(cell["b"]))
                model.rnn.bias_hh_l0.zero_()
            else:
                model.rnn.bias_ih_l0.copy_(t(cell["bi"]))
                model.rnn.bias_hh_l0.copy_(t(cell["bh"]))
            linear(model.head, params["head"])
        else:
            raise ValueError(f"cannot load funcnets params into the {workload!r} twin")


def make_step(model: nn.Module, device: str = "cpu", precision: str = "float32", **adam):
    """``step(None, (x, y)) -> loss``: zero grads, forward, cross-entropy, backward, Adam.

    In bf16 the forward pass and the loss run under ``torch.autocast``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, **adam)
    device_type = "cuda" if device == "cuda" else "cpu"

    def autocast():
        if precision == "float32":
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=torch.bfloat16)

    def step(_, batch):
        x, y = batch
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    return step


def peak_matmul(settings: Settings, precision: str, device: str, sync) -> dict:
    """The best rate of ``a @ b`` for square ``settings.matmul_size`` matrices, in this process."""
    n, dtype = settings.matmul_size, torch.float32 if precision == "float32" else torch.bfloat16
    generator = torch.Generator().manual_seed(settings.seed)
    a, b = (torch.randn(n, n, generator=generator).to(device, dtype) for _ in range(2))
    rate = measure.peak_rate(lambda: a @ b, sync, 2.0 * n**3)
    return {"flops_per_s": rate, "size": n, "dtype": str(dtype).removeprefix("torch.")}


def run(workload: str, settings: Settings, precision: str = "float32") -> dict:
    """Eager steps with each Adam kernel, the peak matmul rate, an epoch with the default Adam."""
    device = "cuda" if settings.device == "gpu" else "cpu"
    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)

    def sync(value):
        if device == "cuda":
            torch.cuda.synchronize()
        return value

    def fresh_step(**adam):
        torch.manual_seed(settings.seed)
        return make_step(network(workload).to(device), device, precision, **adam)

    x, y = data.synthetic(settings.batch * settings.step_batches, settings.seed + 1)
    batches = [inputs(workload, *batch, device) for batch in data.batches(x, y, settings.batch)]
    rows, skipped = {}, {}
    for row, adam in ADAM.items():
        try:
            fresh_step(**adam)(None, batches[0])
        except (RuntimeError, ValueError) as error:  # e.g. no fused Adam on this device
            skipped[row] = f"{adam}: {error}"
            continue
        rows[row], _ = measure.time_steps(fresh_step(**adam), None, batches, settings, sync)
        ms = rows[row]["step_ms"]
        print(f"  torch {workload} {precision} {row}: {ms:.3f} ms/step", flush=True)
    peak_steps = measure.peak_rss_mb()
    peak = peak_matmul(settings, precision, device, sync)

    x, y = data.synthetic(settings.epoch_samples, settings.seed + 2)
    epoch_batches = [inputs(workload, *b, device) for b in data.batches(x, y, settings.batch)]
    rows["epoch_torch"], _ = measure.time_epochs(fresh_step(), None, epoch_batches, settings, sync)
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
        "peak_matmul": peak,
        "versions": versions,
        "skipped_rows": skipped,
    }
