"""Two quantized networks besides qresnet.SmallResNet, exported by halibit.fx_export.

* `VGGSmall`: a VGG-style network, three stages of two conv-BN-ReLU-ActQuant layers, each
  stage ending in a 2x2 max pool; weights at 8 (the first conv, reading the image), 4, 4, 3, 2 and
  1 (binary) bits with 4, 4, 3, 2, 1 and 2-bit activation codes; then flatten, a hidden fully
  connected layer (4-bit weights, BatchNorm1d, 4-bit codes) and the classifier (8-bit weights,
  one step: int32 logits). The second stage pools *before* its quantizer (conv-BN-ReLU-pool-
  ActQuant), which the exporter turns into conv -> codes -> max_pool.
* `ResNet20`: ResNet-20 (He et al. 2016, CIFAR: a 3x3 stem and three stages of three basic blocks,
  stride 2 and a 1x1 downsample at the start of stages 2 and 3) with PalQuant groups: every block
  is G parallel groups (grouped convolutions, widths x G) with a cyclic channel shuffle after
  every block but the last, written here as view-permute-reshape. 8-bit stem and fc, `plan`
  (encoding, bits) for the blocks (W = A), global average pooling to 8-bit codes.

Both read a normalised RGB image (`normalize`, mean MEAN and one std STD; `MEAN * 255` are
integers, so the file's padding value is exactly the model's zero padding). `briefly_trained`
gives deterministic weights with realistic BatchNorm statistics and quantizer steps (a few SGD
steps on halibit.images' smooth random images with random labels), for tests and the golden set:

    /usr/bin/python3 -m halibit.archs --arch vgg_small -o vgg.halibit [--size N] [--steps 20] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import fx_export
from .images import random_images
from .modelfile import write_model
from .quant import ActQuant, QConv2d, QLinear

MEAN = (124 / 255, 116 / 255, 104 / 255)
STD = (0.25, 0.25, 0.25)


def normalize(images_u8: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """uint8 NCHW RGB images -> the float input of the networks here (computed in float64)."""
    mean = torch.tensor(MEAN, dtype=torch.float64).reshape(1, 3, 1, 1)
    return ((images_u8.double() / 255.0 - mean) / STD[0]).to(dtype)


class ConvBNAct(nn.Sequential):
    """QConv2d (weights `weight` = (encoding, bits), reading `in_bits`-bit codes) -> BN -> ReLU
    [-> max pool] -> ActQuant(out_bits) [-> max pool]."""

    def __init__(self, cin, cout, weight, in_bits, out_bits, pool=None):
        layers = [QConv2d(cin, cout, 3, 1, 1, weight=weight, act_bits=in_bits), nn.BatchNorm2d(cout), nn.ReLU()]
        if pool == "before":
            layers.append(nn.MaxPool2d(2))
        layers.append(ActQuant(out_bits))
        if pool == "after":
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)


class VGGSmall(nn.Module):
    # (out channels, weight (encoding, bits), output code bits, max pool)
    CONFIG = ((16, ("signed", 8), 4, None), (16, ("signed", 4), 4, "after"),
              (32, ("signed", 4), 3, None), (32, ("signed", 3), 2, "before"),
              (64, ("signed", 2), 1, None), (64, ("binary", 1), 2, "after"))

    def __init__(self, size=24, classes=10, hidden=64):
        super().__init__()
        layers, cin, bits = [], 3, 8
        for cout, weight, out_bits, pool in self.CONFIG:
            layers.append(ConvBNAct(cin, cout, weight, bits, out_bits, pool))
            cin, bits = cout, out_bits
        self.features = nn.Sequential(*layers)
        side = size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(),
            QLinear(cin * side * side, hidden, weight=("signed", 4), act_bits=bits), nn.BatchNorm1d(hidden),
            nn.ReLU(), ActQuant(4),
            QLinear(hidden, classes, weight=("signed", 8), per_channel=False))

    def forward(self, x):
        return self.classifier(self.features(x))


def channel_shuffle(x, groups):
    """out k*G + g = in g*K + k, as view / permute / reshape (qresnet.shuffle uses transpose)."""
    n, c, h, w = x.shape
    return x.view(n, groups, -1, h, w).permute(0, 2, 1, 3, 4).reshape(n, -1, h, w)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, weight, groups, shuffle):
        super().__init__()
        bits = weight[1]
        self.groups, self.shuffle = groups, shuffle
        self.conv1 = QConv2d(cin, cout, 3, stride, 1, groups, weight=weight)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = ActQuant(bits)
        self.conv2 = QConv2d(cout, cout, 3, 1, 1, groups, weight=weight)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(QConv2d(cin, cout, 1, stride, 0, groups, weight=weight),
                                            nn.BatchNorm2d(cout))
        self.act2 = ActQuant(bits)

    def forward(self, x):
        h = self.act1(F.relu(self.bn1(self.conv1(x))))
        shortcut = self.downsample(x) if self.downsample is not None else x
        y = self.act2(F.relu(self.bn2(self.conv2(h)) + shortcut))
        return channel_shuffle(y, self.groups) if self.shuffle else y


class ResNet20(nn.Module):
    def __init__(self, widths=(16, 32, 64), groups=2, weight=("signed", 2), classes=10, blocks=3):
        super().__init__()
        bits = weight[1]
        c0 = widths[0] * groups
        self.stem = QConv2d(3, c0, 3, 1, 1, weight=("signed", 8))
        self.stem_bn = nn.BatchNorm2d(c0)
        self.stem_act = ActQuant(bits)
        stages, cin = [], c0
        for i, width in enumerate(widths):
            stage = []
            for j in range(blocks):
                last = i == len(widths) - 1 and j == blocks - 1
                stage.append(BasicBlock(cin, width * groups, 2 if (i > 0 and j == 0) else 1, weight, groups,
                                        shuffle=groups > 1 and not last))
                cin = width * groups
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.pool_act = ActQuant(8)
        self.fc = QLinear(cin, classes, weight=("signed", 8), per_channel=False)

    def forward(self, x):
        x = self.stem_act(F.relu(self.stem_bn(self.stem(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.pool_act(torch.flatten(self.avgpool(x), 1))
        return self.fc(x)


# name -> (the network for size x size images, the default size)
ARCHS = {
    "vgg_small": (lambda size: VGGSmall(size), 24),
    "resnet20_palquant": (lambda size: ResNet20(widths=(8, 16, 32), groups=2), 16),
}


def briefly_trained(model: nn.Module, size: int, steps: int = 20, seed: int = 0, batch: int = 32, lr: float = 0.02):
    """`model` after `steps` SGD steps on smooth random images with random labels (seeded; one
    thread): BatchNorm statistics and quantizer steps move off their initial values. Eval mode."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        images = random_images(steps * batch, size, size, 3, seed=seed)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        model.train()
        for i in range(steps):
            x = normalize(torch.from_numpy(images[i * batch:(i + 1) * batch]).permute(0, 3, 1, 2))
            y = torch.from_numpy(rng.integers(0, 10, batch))
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def build(arch: str, size: int | None = None, steps: int = 20, seed: int = 0):
    """(the briefly trained torch model of `arch` (ARCHS) for size x size RGB images, size)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: {', '.join(ARCHS)}")
    make, default = ARCHS[arch]
    size = size or default
    torch.manual_seed(seed)
    return briefly_trained(make(size), size, steps, seed), size


def export(model: nn.Module, size: int, name: str):
    return fx_export.export(model, (3, size, size), name, [f"class{i}" for i in range(10)], MEAN, STD)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m halibit.archs", description=__doc__.splitlines()[0])
    p.add_argument("--arch", required=True, choices=sorted(ARCHS))
    p.add_argument("--size", type=int, help="input height and width (default: vgg_small 24, resnet20_palquant 16)")
    p.add_argument("--steps", type=int, default=20, help="SGD steps on random data (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--name", help="model name in the file (default: <arch>-briefly-trained)")
    args = p.parse_args(argv)
    model, size = build(args.arch, args.size, args.steps, args.seed)
    graph, tensors = export(model, size, args.name or f"{args.arch}-briefly-trained")
    write_model(args.output, graph, tensors)
    print(f"wrote {args.output}: {len(graph['layers'])} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
