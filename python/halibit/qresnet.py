"""The trainable small ResNet for Fashion-MNIST (torch) and its export to a halibit model file.

Same structure as networks.small_resnet: 3x3 stem (signed 8-bit weights) -> three stages of one
basic block (widths `widths`, stages 2 and 3 stride 2) -> global average pool to 8-bit codes ->
fc (signed 8-bit weights, one step, no bias) -> int32 logits.

Precision is given per unit (`plan`, see UNITS): the convolutions reading one activation tensor
share its bits as their weight bits; None everywhere for float. PalQuant (`groups`=G):
every block is G parallel groups (widths x G, grouped convolutions), with a cyclic channel
shuffle (out k*G + g = in g*K + k) after every block but the last.

Every conv is followed by BatchNorm; export (halibit.fx_export) folds it into the dyadic
requantization, so the file computes integer-only what the quantized model computes in float,
up to rounding ties and the stem's padding value (mean * 255 rounded to an integer code).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import fashion_mnist, fx_export
from .quant import ActQuant, WeightQuant, weight_quantizer

WIDTHS = (32, 64, 128)


class ConvBN(nn.Module):
    """conv (quantized weights when `weight` = (encoding, bits)) followed by BatchNorm. Its input
    codes have as many bits as its weights (see UNITS), which bounds a codebook's levels."""

    def __init__(self, cin, cout, kernel, stride, pad, groups=1, weight=None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.wq = weight_quantizer(weight[0], weight[1], cout, act_bits=weight[1]) if weight else None

    def weight(self):
        w = self.conv.weight
        return self.wq(w) if self.wq is not None else w

    def forward(self, x):
        c = self.conv
        return self.bn(F.conv2d(x, self.weight(), None, c.stride, c.padding, 1, c.groups))


def act(bits):
    return ActQuant(bits) if bits else nn.Identity()


def shuffle(x, groups):
    """Channel shuffle on NCHW: out k*G + g = in g*K + k."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


# A unit is the set of convolutions that read one activation tensor (a block's conv1 with its
# downsample, or its conv2); its bits are both their weight bits and that tensor's code bits, so
# every kernel runs at W = A (HAWQ-V3 chooses bits per unit).
UNITS = ("layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2", "layer3.0.conv1",
         "layer3.0.conv2")


class Block(nn.Module):
    """Basic block; `first` and `second` = (encoding, bits) of its two units, `out_bits` the code
    bits of its output (the next block's first unit), all None for float."""

    def __init__(self, cin, cout, stride, first, second, out_bits, groups=1, shuffle_out=False):
        super().__init__()
        self.groups, self.shuffle_out = groups, shuffle_out
        self.conv1 = ConvBN(cin, cout, 3, stride, 1, groups, first)
        self.act1 = act(second[1] if second else None)
        self.conv2 = ConvBN(cout, cout, 3, 1, 1, groups, second)
        self.downsample = ConvBN(cin, cout, 1, stride, 0, groups, first) if (stride != 1 or cin != cout) else None
        self.act_out = act(out_bits)

    def forward(self, x):
        h = self.act1(F.relu(self.conv1(x)))
        y = self.conv2(h) + (self.downsample(x) if self.downsample is not None else x)
        y = self.act_out(F.relu(y))
        return shuffle(y, self.groups) if self.shuffle_out else y


class SmallResNet(nn.Module):
    """`plan`: one (encoding, bits) per unit of UNITS, or None everywhere for float."""

    def __init__(self, plan=(None,) * len(UNITS), groups=1, widths=WIDTHS, classes=10):
        super().__init__()
        if len(plan) != len(UNITS):
            raise ValueError(f"plan: {len(plan)} entries for {len(UNITS)} units")
        self.plan, self.groups, self.widths = tuple(plan), groups, tuple(widths)
        quantized = plan[0] is not None
        c0 = widths[0] * groups
        self.stem = ConvBN(1, c0, 3, 1, 1, 1, ("signed", 8) if quantized else None)
        self.stem_act = act(plan[0][1] if quantized else None)
        blocks, cin = [], c0
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2))):
            first, second = plan[2 * i], plan[2 * i + 1]
            out = plan[2 * i + 2] if 2 * i + 2 < len(plan) else second  # the last block keeps its own bits
            blocks.append(Block(cin, width * groups, stride, first, second, out[1] if out else None, groups,
                                shuffle_out=groups > 1 and i < len(widths) - 1))
            cin = width * groups
        self.blocks = nn.ModuleList(blocks)
        self.pool_act = act(8 if quantized else None)
        self.fc = nn.Linear(cin, classes, bias=not quantized)
        self.fcq = WeightQuant("signed", 8, classes, per_channel=False) if quantized else None

    def unit_convs(self):
        """{unit name: [ConvBN, ...]} in UNITS order."""
        out = {}
        for i, b in enumerate(self.blocks):
            out[f"layer{i + 1}.0.conv1"] = [b.conv1] + ([b.downsample] if b.downsample is not None else [])
            out[f"layer{i + 1}.0.conv2"] = [b.conv2]
        return out

    def forward(self, x):
        x = self.stem_act(F.relu(self.stem(x)))
        for b in self.blocks:
            x = b(x)
        x = self.pool_act(x.mean(dim=(2, 3)))
        w = self.fcq(self.fc.weight) if self.fcq is not None else self.fc.weight
        return F.linear(x, w, self.fc.bias)


def palquant_state(plain: dict, groups: int) -> dict:
    """PalQuant's transform of a plain network's weights (state_dict) into G parallel groups.

    Every group starts as a copy of the plain layer: the stem's channels are repeated G times,
    block 1's groups are exact copies (their inputs are), and after a cyclic shuffle a group sees
    each of 1/G of the features G times, so input channel m of a group takes the plain weights of
    feature (g C + m) // G. The fc averages the G copies. Only block 1 is exactly preserved; the
    rest is a warm start that quantization-aware training finishes (PalQuant trains end to end).
    """
    out = {}
    for name, t in plain.items():
        if name.startswith("stem.") and t.dim() >= 1 and name != "stem.bn.num_batches_tracked":
            out[name] = t.repeat((groups,) + (1,) * (t.dim() - 1))  # output channels repeated
        elif name.startswith("blocks."):
            block = int(name.split(".")[1])
            if name.endswith("num_batches_tracked"):
                out[name] = t
            elif name.endswith("conv.weight"):  # [Cout, Cin, k, k] -> [G Cout, Cin, k, k], grouped
                cout, cin = t.shape[:2]
                parts = []
                for g in range(groups):
                    if block == 0 or ".conv2." in name:  # inputs are this group's own copies
                        parts.append(t)
                    else:  # after a shuffle: group g's input m is feature (g cin + m) // G
                        idx = torch.div(torch.arange(cin) + g * cin, groups, rounding_mode="floor")
                        parts.append(t[:, idx])
                out[name] = torch.cat(parts, 0)
            else:  # BatchNorm per output channel
                out[name] = t.repeat(groups)
        elif name == "fc.weight":
            out[name] = t.repeat(1, groups) / groups
        else:
            out[name] = t
    return out


def normalize(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW images -> the float input the network trains on."""
    return (images_u8.float() / 255.0 - fashion_mnist.MEAN[0]) / fashion_mnist.STD[0]


# -- export ------------------------------------------------------------------------------------


def layer_name(path: str) -> str:
    """The file's layer name of a module path: torchvision's (`stem` -> `conv1`, `blocks.1.conv2`
    -> `layer2.0.conv2`, `blocks.0.add` -> `layer1.0.add`); `avgpool` and `fc` as they are."""
    if path == "stem":
        return "conv1"
    if path.startswith("blocks."):
        _, block, rest = path.split(".", 2)
        return f"layer{int(block) + 1}.0.{rest}"
    return path


def export(model: SmallResNet, name: str, labels=fashion_mnist.LABELS):
    """(graph, stored tensors) of a quantized SmallResNet in eval mode (BN running statistics):
    halibit.fx_export with Fashion-MNIST's input and torchvision's layer names."""
    if model.plan[0] is None:
        raise ValueError("export: the model is not quantized (plan of None)")
    return fx_export.export(model, (1, 28, 28), name, labels, fashion_mnist.MEAN, fashion_mnist.STD,
                            rename=layer_name)
