"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), adapted to 28x28 inputs."""

from __future__ import annotations

from funcnets.activations import tanh
from funcnets.layers import AvgPool2D, Conv2D, Dense, Flatten, Layer, Sequential


def lenet5(num_classes: int = 10) -> Layer:
    """LeNet-5: two conv/pool stages and three dense layers, tanh throughout.

    The paper's C1 takes a 32x32 image with VALID padding; here C1 uses SAME
    padding so a 28x28 MNIST image gives the same 28x28x6 maps. Subsampling
    layers are 2x2 average pools; C3 is fully connected to S2 (the paper's
    sparse connection table is dropped, as is customary); the output is a
    Dense layer of logits instead of RBF units. 61,706 params for 10 classes.

    Shapes for a (batch, 28, 28, 1) input: C1 (28, 28, 6), S2 (14, 14, 6),
    C3 (10, 10, 16), S4 (5, 5, 16), C5 (120), F6 (84), output (num_classes).
    """
    return Sequential(
        c1=Conv2D(6, 5, padding="SAME"), act1=tanh, s2=AvgPool2D(2),
        c3=Conv2D(16, 5, padding="VALID"), act3=tanh, s4=AvgPool2D(2),
        flatten=Flatten(), c5=Dense(120), act5=tanh, f6=Dense(84), act6=tanh,
        output=Dense(num_classes),
    )  # fmt: skip
