"""The ss-InfoGAN MNIST training iteration in PyTorch: the reference `cargo xtask bench` times ours against.

The same model and step as the `ssinfogan` training loop (PAPER.md; official Torch code): G and D of InfoGAN's
MNIST table with the Q_ss and Q_us heads, leaky ReLU slope 0.01, BatchNorm eps 1e-5 / momentum 0.1, two Adams
(D/Q lr 1e-4, G lr 1e-3, betas (0.5, 0.999), eps 1e-8), one labelled batch per iteration (the first epoch's):
  D/Q step: BCE(D(x), 1) + 2·CE(Q_ss(x), y) + BCE(D(G(z,c)).detach, 0) + 0.8·MSE(Q_us(G(z,c)), c_cont)
  G step:   BCE(D(G(z,c)), 1) + 2·CE(Q_ss(G(z,c)), c_ss) + 0.8·MSE(Q_us(G(z,c)), c_cont), D's parameters frozen
with every logged loss read back as a Python float, as ours are. Images are random in [0, 1): their content
does not change the work. Prints one JSON object per batch size.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F

SLOPE = 0.01
NOISE, CONTINUOUS, CLASSES = 62, 2, 10


def bn1(n):
    return nn.BatchNorm1d(n, eps=1e-5, momentum=0.1)


def bn2(n):
    return nn.BatchNorm2d(n, eps=1e-5, momentum=0.1)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(NOISE + CONTINUOUS + CLASSES, 1024), bn1(1024), nn.ReLU(),
            nn.Linear(1024, 128 * 7 * 7), bn1(128 * 7 * 7), nn.ReLU(),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1), bn2(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid(),
        )

    def forward(self, z):
        return self.deconv(self.fc(z).view(-1, 128, 7, 7))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(SLOPE),
            nn.Conv2d(64, 128, 4, 2, 1), bn2(128), nn.LeakyReLU(SLOPE),
            nn.Flatten(), nn.Linear(128 * 7 * 7, 1024), bn1(1024), nn.LeakyReLU(SLOPE),
        )
        self.d = nn.Linear(1024, 1)
        self.q_ss = nn.Linear(1024, CLASSES)
        self.q_us = nn.Sequential(nn.Linear(1024, 128), bn1(128), nn.LeakyReLU(SLOPE), nn.Linear(128, CONTINUOUS))

    def forward(self, x):
        h = self.body(x)
        return self.d(h), self.q_ss(h), self.q_us(h)


def latent(batch):
    codes = torch.randint(0, CLASSES, (batch,))
    continuous = torch.rand(batch, CONTINUOUS) * 2 - 1
    z = torch.cat([F.one_hot(codes, CLASSES).float(), continuous, torch.randn(batch, NOISE)], dim=1)
    return z, codes, continuous


def iteration(g, d, opt_g, opt_d, real, labels):
    batch = real.shape[0]
    z, codes, continuous = latent(batch)
    fake = g(z)
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    d_real, q_ss_real, _ = d(real)
    d_fake, _, q_us_fake = d(fake.detach())
    loss_real = F.binary_cross_entropy_with_logits(d_real, ones)
    loss_ss = F.cross_entropy(q_ss_real, labels)
    loss_fake = F.binary_cross_entropy_with_logits(d_fake, zeros)
    loss_us = F.mse_loss(q_us_fake, continuous)
    d_loss = loss_real + 2.0 * loss_ss + loss_fake + 0.8 * loss_us
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    accuracy = (q_ss_real.argmax(1) == labels).float().mean()

    # D is frozen for the G step (its gradients there would be discarded), as the `ssinfogan` step freezes it.
    d.requires_grad_(False)
    d_fake, q_ss_fake, q_us_fake = d(fake)
    g_adv = F.binary_cross_entropy_with_logits(d_fake, ones)
    g_ss = F.cross_entropy(q_ss_fake, codes)
    g_us = F.mse_loss(q_us_fake, continuous)
    g_loss = g_adv + 2.0 * g_ss + 0.8 * g_us
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    d.requires_grad_(True)
    return [t.item() for t in (d_loss, loss_real, loss_fake, loss_ss, accuracy, loss_us, g_loss, g_adv, g_ss)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="64,128")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        g, d = Generator().train(), Discriminator().train()
        opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999), eps=1e-8)
        opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999), eps=1e-8)
        real, labels = torch.rand(batch, 1, 28, 28), torch.randint(0, CLASSES, (batch,))
        seconds = []
        for i in range(args.warmup + args.iterations):
            started = time.perf_counter()
            iteration(g, d, opt_g, opt_d, real, labels)
            if i >= args.warmup:
                seconds.append(time.perf_counter() - started)
        print(json.dumps({
            "implementation": f"pytorch {torch.__version__}",
            "batch_size": batch,
            "threads": torch.get_num_threads(),
            "iterations": len(seconds),
            "median_ms": 1e3 * statistics.median(seconds),
            "min_ms": 1e3 * min(seconds),
            "max_ms": 1e3 * max(seconds),
        }), flush=True)


if __name__ == "__main__":
    main()
