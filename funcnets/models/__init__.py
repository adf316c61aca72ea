"""Classic architectures: classifiers as `Layer`s, and models with their own step.

A classifier (`mlp`, `lenet5`, `resnet`, `lstm_classifier`) is a `Layer`
trained by `fn.train.fit`. A model with its own objective or several networks
(`autoencoder`, `vae`, `gan`, `rbm`) follows the `Trainable` protocol (``init``, ``step``,
``evaluate``) and trains through `fn.train.run`. `perceptron` is trained by
Rosenblatt's rule, not by gradients.
"""

from funcnets.models.autoencoder import Autoencoder, autoencoder, gaussian_noise, masking_noise
from funcnets.models.gan import GAN, dcgan_mnist, gan
from funcnets.models.lenet import lenet5
from funcnets.models.lstm import lstm_classifier
from funcnets.models.mlp import mlp
from funcnets.models.perceptron import Perceptron, perceptron
from funcnets.models.rbm import RBM, rbm
from funcnets.models.resnet import resnet
from funcnets.models.trainable import Trainable
from funcnets.models.vae import VAE, binarize, vae

__all__ = [
    "Autoencoder",
    "VAE",
    "GAN",
    "Perceptron",
    "RBM",
    "Trainable",
    "autoencoder",
    "binarize",
    "dcgan_mnist",
    "gan",
    "gaussian_noise",
    "lenet5",
    "lstm_classifier",
    "masking_noise",
    "mlp",
    "perceptron",
    "rbm",
    "resnet",
    "vae",
]
