"""Sample from a generator exported by `ssinfogan export`, with numpy and safetensors only.

    from ssinfogan_generator import Generator

    g = Generator.load("export/")                  # model.safetensors, config.json, examples.safetensors
    images = g.sample(code=3, n=16, seed=0)        # (16, C, H, W) in [0, 1]
    images = g.generate(latents)                   # latents laid out as config.json's "latent" says
    print(g.check())                               # largest difference from the exporting build's images

The two network families of the project are written out layer by layer as the Rust networks run them in
inference (BatchNorm with its running statistics), in float64: `mnist` (InfoGAN's MNIST generator, 28x28x1)
and `colour-32` (InfoGAN's SVHN/CelebA generator, 32x32x3).
"""

import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

FORMAT = "ssinfogan-generator"


class Generator:
    def __init__(self, config, weights, directory=None):
        if config.get("format") != FORMAT or config.get("version") != 1:
            raise ValueError(f"not an ssinfogan export (config.json format {config.get('format')!r}, "
                             f"version {config.get('version')!r}); export the run again with `ssinfogan export`")
        self.config = config
        self.weights = {name: w.astype(np.float64) for name, w in weights.items()}
        self.directory = directory
        self.kind = config["network"]["kind"]
        self.eps = float(config["network"]["batch_norm_eps"])
        self.input_size = int(config["input_size"])
        if self.kind not in ("mnist", "colour-32"):
            raise ValueError(f"network kind {self.kind!r} is not one this loader knows (mnist, colour-32)")

    @classmethod
    def load(cls, directory):
        with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        weights = load_file(os.path.join(directory, config.get("weights", "model.safetensors")))
        return cls(config, weights, directory)

    # The layers, as candle stores their parameters.

    def _linear(self, x, name):
        return x @ self.weights[f"{name}.weight"].T + self.weights[f"{name}.bias"]

    def _batch_norm(self, x, name):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        w = self.weights
        mean = w[f"{name}.running_mean"].reshape(shape)
        var = w[f"{name}.running_var"].reshape(shape)
        return (x - mean) / np.sqrt(var + self.eps) * w[f"{name}.weight"].reshape(shape) + w[f"{name}.bias"].reshape(shape)

    def _conv_transpose(self, x, name, stride=2, padding=1):
        """A transposed convolution: each input pixel adds its kernel, weighted, into the output."""
        weight = self.weights[f"{name}.weight"]  # (in, out, k, k)
        _, c_out, k, _ = weight.shape
        n, _, h, w = x.shape
        full = np.zeros((n, c_out, (h - 1) * stride + k, (w - 1) * stride + k))
        for i in range(k):
            for j in range(k):
                full[:, :, i:i + stride * h:stride, j:j + stride * w:stride] += np.einsum(
                    "nchw,cd->ndhw", x, weight[:, :, i, j])
        height, width = (h - 1) * stride - 2 * padding + k, (w - 1) * stride - 2 * padding + k
        out = full[:, :, padding:padding + height, padding:padding + width]
        return out + self.weights[f"{name}.bias"].reshape(1, -1, 1, 1)

    def generate(self, latents):
        """Images (N, C, H, W) in [0, 1] from latents (N, input_size)."""
        x = np.asarray(latents, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"latents must be (N, {self.input_size}), got {x.shape}")
        relu = lambda t: np.maximum(t, 0.0)
        n = x.shape[0]
        if self.kind == "mnist":
            x = relu(self._batch_norm(self._linear(x, "fc1"), "bn1"))
            x = relu(self._batch_norm(self._linear(x, "fc2"), "bn2")).reshape(n, 128, 7, 7)
            x = relu(self._batch_norm(self._conv_transpose(x, "deconv1"), "bn3"))
            return 1.0 / (1.0 + np.exp(-self._conv_transpose(x, "deconv2")))
        x = relu(self._batch_norm(self._linear(x, "fc"), "bn_fc")).reshape(n, 448, 2, 2)
        x = relu(self._batch_norm(self._conv_transpose(x, "deconv1"), "bn1"))
        x = relu(self._conv_transpose(x, "deconv2"))
        x = relu(self._conv_transpose(x, "deconv3"))
        return (np.tanh(self._conv_transpose(x, "deconv4")) + 1.0) * 0.5

    def latents(self, n, code=None, seed=None):
        """N latent vectors drawn as in training: the semi-supervised code `code` (or drawn), the other
        categorical codes drawn, continuous codes uniform in [-1, 1), standard normal noise."""
        rng = np.random.default_rng(seed)
        z = np.zeros((n, self.input_size))
        for block in self.config["latent"]:
            at, size = block["offset"], block["size"]
            if block["kind"] == "categorical":
                fixed = code if block.get("semi_supervised") and code is not None else None
                if fixed is not None and not 0 <= fixed < size:
                    raise ValueError(f"code {fixed} is not a value of {block['name']} (0 to {size - 1})")
                values = np.full(n, fixed) if fixed is not None else rng.integers(0, size, n)
                z[np.arange(n), at + values] = 1.0
            elif block["kind"] == "continuous":
                z[:, at:at + size] = rng.uniform(block["low"], block["high"], (n, size))
            else:
                z[:, at:at + size] = rng.normal(block["mean"], block["std"], (n, size))
        return z

    def sample(self, n=16, code=None, seed=None):
        return self.generate(self.latents(n, code, seed))

    def check(self):
        """The largest absolute difference between these images and the ones the exporting build made from the
        same latents (examples.safetensors)."""
        examples = load_file(os.path.join(self.directory, self.config.get("examples", "examples.safetensors")))
        return float(np.max(np.abs(self.generate(examples["latents"]) - examples["images"])))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python ssinfogan_generator.py EXPORT_DIR   (prints the check against examples.safetensors)")
    generator = Generator.load(sys.argv[1])
    print(f"{generator.kind} generator, input {generator.input_size}; largest difference from the exporting "
          f"build's example images: {generator.check():.3g}")
