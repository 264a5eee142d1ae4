"""Graph builders for ResNets with SYNTHETIC weights (for speed measurements, not accuracy).

Every weight is drawn from a seeded numpy RNG inside its encoding's range; requantization
parameters are calibrated on deterministic random images (halibit.images) by running the integer
simulator layer by layer, so activations spread over their code range:

* conv -> codes: per output channel, the accumulator's mean mu and standard deviation sd on the
  calibration images define a BatchNorm+ReLU-like map  code = (acc - lo) * L / (hi - lo),
  L = 2^bits - 1, with lo = mu - sd/2 and hi = mu + 2 sd (so about a third of the codes are 0
  and few saturate); for 1-bit outputs lo, hi = mu -+ sd/2 (a threshold at the mean).
* add: both inputs are standardised per channel (x_i - mu_i) / sd_i, summed, and mapped to codes
  as above from the sum's own statistics.
* global_avg_pool: one multiplier for the tensor, mapping the largest window sum to 0.75 * 255.
* The float coefficients become dyadic numbers with one shift per layer
  (halibit.dyadic.requant_params), chosen so that int64 intermediates cannot overflow for ANY
  input; every int32 accumulator is checked for the worst case input (modelfile.validate).
* output.scale: logits * scale has a standard deviation of about 2 on the calibration images.
* With int32_bias, every conv with an int32 output (residual branches, downsamples, fc) gets a
  per-channel int32 `bias` (format version 3) of up to two standard deviations of its
  accumulator, drawn from the same RNG (only then: models without biases are unchanged).

Tensor `scale`s are nominal (informative only): image 1/(255 std), weights 1/(2^(W-1) sqrt(fan_in)).

Structure (docs/model-format.md ops; names as torchvision): the stem conv reads the 8-bit image
codes with pad_values = round(mean * 255) per channel (normalisation folded: weights act on raw
codes, the mean offset is in the bias); basic blocks conv1 (codes) -> conv2 (int32) + shortcut
(block input codes, or a 1x1 `downsample` conv to int32) -> add (codes); bottlenecks conv1 1x1 ->
conv2 3x3 (stride here) -> conv3 1x1 (int32) + shortcut -> add; global_avg_pool to 8-bit codes;
fc = 1x1 conv with signed 8-bit weights to the int32 tensor "logits". Stem and fc always use
signed 8-bit weights; every other conv uses its stage's precision.

Precisions: w1a1 (binary weights, 1-bit codes), w2a2, w4a4, w8a8 (signed weights), w2a2odd
(odd 2-bit weights {-3, -1, 1, 3}, 2-bit codes) and mixed: stages alternate w4a4 (stages 1, 3)
and w2a2 (stages 2, 4); the stem's output has the first stage's bits.
"""
from __future__ import annotations

import math
import time

import numpy as np

from . import fashion_mnist
from . import simulator as sim
from .dyadic import requant_params
from .images import random_images
from .modelfile import ACC_LIMIT, FORMAT_VERSION, encoding_range, format_version_for

# precision -> (weight encoding, weight bits, activation bits)
PRECISIONS = {
    "w1a1": ("binary", 1, 1),
    "w2a2": ("signed", 2, 2),
    "w4a4": ("signed", 4, 4),
    "w8a8": ("signed", 8, 8),
    "w2a2odd": ("odd", 2, 2),
    "w2a2codebook": ("codebook", 2, 2),
    "mixed": None,
}
# The levels of synthetic codebook layers: non-uniform, inside the pairwise table's int8
# products with 2-bit codes (|level| <= 42).
SYNTHETIC_LEVELS = {1: [-11, 7], 2: [-13, -3, 4, 17]}
MIXED_STAGES = ("w4a4", "w2a2")  # stage i uses MIXED_STAGES[i % 2]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def stage_precision(precision: str, stage: int) -> tuple[str, int, int]:
    """(encoding, weight bits, activation bits) of stage `stage` (0-based) of a network."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    if precision == "mixed":
        return PRECISIONS[MIXED_STAGES[stage % 2]]
    return PRECISIONS[precision]


def _stats(a: np.ndarray):
    """Per-channel mean and standard deviation (floored away from 0) of a [..., C] array."""
    v = a.reshape(-1, a.shape[-1]).astype(np.float64)
    mu, sd = v.mean(axis=0), v.std(axis=0)
    floor = max(0.5, 0.05 * float(np.median(sd)))
    return mu, np.maximum(sd, floor)


def _code_range(mu, sd, bits):
    """Accumulator values mapped to code 0 and to the top code (see the module docstring)."""
    if bits == 1:
        return mu - 0.5 * sd, mu + 0.5 * sd
    return mu - 0.5 * sd, mu + 2.0 * sd


class Builder:
    """Builds a graph layer by layer, calibrating each layer on the calibration images."""

    def __init__(self, name, shape, color, mean, std, labels, seed=0, calib_images=1, log=None, int32_bias=False):
        H, W, C = shape
        self.rng = np.random.default_rng(seed)
        self.int32_bias = int32_bias  # the default of conv(bias=...) for int32 outputs
        image_scale = 1.0 / (255.0 * float(np.mean(std)))
        self.graph = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "input": {"tensor": "image", "color": color, "mean": list(mean), "std": list(std)},
            "output": None,
            "labels": list(labels),
            "tensors": {"image": {"shape": [H, W, C], "type": "codes", "bits": 8, "scale": image_scale}},
            "layers": [],
        }
        self.stored = {}
        self.acts = {"image": random_images(calib_images, H, W, C, seed=[seed, 1])}
        self.bound = {"image": 255}  # largest |value| a tensor can hold, for any input
        self.log = log or (lambda msg: None)
        self.t0 = time.time()

    # -- helpers ---------------------------------------------------------------------------

    def spec(self, name):
        return self.graph["tensors"][name]

    def progress(self, what):
        self.log(f"{self.graph['name']}: {what} ({time.time() - self.t0:.1f} s)")

    def _tensor(self, name, shape, type_, scale, bits=None):
        if name in self.graph["tensors"]:
            raise ValueError(f"tensor '{name}' already exists")
        s = {"shape": [int(d) for d in shape], "type": type_}
        if bits is not None:
            s["bits"] = int(bits)
        s["scale"] = float(scale)
        self.graph["tensors"][name] = s

    def _store(self, name, array):
        if name in self.stored:
            raise ValueError(f"stored tensor '{name}' already exists")
        self.stored[name] = array
        return name

    def weights(self, shape, encoding, bits, levels=None):
        """Random int8 weights of `encoding` at `bits`, spread over the whole range (codebook:
        the `levels`, equally likely)."""
        if encoding == "codebook":
            return self.rng.choice(np.asarray(levels, dtype=np.int64), size=shape).astype(np.int8)
        lo, hi = encoding_range(encoding, bits)
        if encoding == "binary":
            w = self.rng.integers(0, 2, size=shape) * 2 - 1
        elif encoding == "odd":
            w = self.rng.integers(0, 1 << bits, size=shape) * 2 - ((1 << bits) - 1)
        elif bits == 2:  # zero mean: a weight mean feeds a per-image common mode that grows with depth
            w = self.rng.choice(np.array([-2, -1, 0, 1]), size=shape, p=[0.1, 0.2, 0.3, 0.4])
        else:
            w = np.clip(np.rint(self.rng.normal(0.0, (1 << (bits - 1)) / 2.5, size=shape)), lo, hi)
        return w.astype(np.int8)

    # -- layers ------------------------------------------------------------------------------

    def conv(self, name, x, cout, kernel, stride=1, pad=0, groups=1, encoding="signed", wbits=8,
             out_bits=None, pad_values=None, output=None, levels=None, bias=None):
        """A conv layer; codes output of `out_bits` bits (requantized) or int32 when None (with a
        random int32 `bias` if bias, default the builder's int32_bias); `levels` for codebook
        weights."""
        output = output or name
        if bias is None:
            bias = self.int32_bias and out_bits is None
        if bias and out_bits is not None:
            raise ValueError(f"layer '{name}': only a conv with an int32 output has a bias")
        if encoding == "codebook" and levels is None:
            levels = SYNTHETIC_LEVELS[wbits]
        xs = self.spec(x)
        H, W, C = xs["shape"]
        KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
        w = self.weights((cout, KH, KW, C // groups), encoding, wbits, levels)
        # worst case accumulator over every possible input (codes and pad values)
        amax = (1 << xs["bits"]) - 1
        if pad_values is not None:
            amax = max(amax, max(pad_values))
        wf = w.reshape(cout, -1).astype(np.int64)
        hi_acc = np.where(wf > 0, wf, 0).sum(axis=1) * amax
        lo_acc = np.where(wf < 0, wf, 0).sum(axis=1) * amax
        if hi_acc.max() > ACC_LIMIT or lo_acc.min() < -ACC_LIMIT:
            raise ValueError(f"layer '{name}': the accumulator can leave +-(2^31 - 2)")
        worst_c = np.maximum(hi_acc, -lo_acc)
        worst = int(worst_c.max())

        acc = sim.conv_acc(self.acts[x], w, stride, pad, groups, pad_values)
        layer = {"name": name, "op": "conv", "inputs": [x], "output": output,
                 "kernel": [KH, KW], "stride": stride, "pad": pad, "groups": groups,
                 "weights": {"tensor": self._store(f"{name}.weight", w), "encoding": encoding, "bits": wbits}}
        if encoding == "codebook":
            layer["weights"]["levels"] = [int(v) for v in levels]
        if pad_values is not None:
            layer["pad_values"] = [int(v) for v in pad_values]
        wscale = 1.0 / ((1 << max(wbits - 1, 0)) * math.sqrt(KH * KW * C // groups))
        acc_scale = xs["scale"] * wscale
        if out_bits is None:
            self._tensor(output, acc.shape[1:], "int32", acc_scale)
            if bias:
                _, sd = _stats(acc)
                b = np.rint(self.rng.uniform(-2.0, 2.0, cout) * sd)
                b = np.clip(b, -(ACC_LIMIT - worst_c), ACC_LIMIT - worst_c).astype(np.int32)
                layer["bias"] = self._store(f"{name}.bias", b)
                acc = sim.add_int32_bias(acc, b)
                worst = int((worst_c + np.abs(b.astype(np.int64))).max())
            self.acts[output] = acc
            self.bound[output] = worst
        else:
            mu, sd = _stats(acc)
            lo, hi = _code_range(mu, sd, out_bits)
            coeff = ((1 << out_bits) - 1) / (hi - lo)
            (M,), B, S = requant_params([coeff], -lo * coeff, [worst])
            layer["requantize"] = {"multiplier": self._store(f"{name}.multiplier", M),
                                   "bias": self._store(f"{name}.bias", B), "shift": int(S)}
            self._tensor(output, acc.shape[1:], "codes", acc_scale / float(np.median(coeff)), out_bits)
            self.acts[output] = sim.requantize(acc, M, B, S, out_bits)
            self.bound[output] = (1 << out_bits) - 1
        self.graph["layers"].append(layer)
        return output

    def add(self, name, x0, x1, out_bits, output=None):
        output = output or name
        a0, a1 = self.acts[x0], self.acts[x1]
        mu0, sd0 = _stats(a0)
        mu1, sd1 = _stats(a1)
        y = (a0.astype(np.float64) - mu0) / sd0 + (a1.astype(np.float64) - mu1) / sd1
        muy, sdy = _stats(y)
        lo, hi = _code_range(muy, sdy, out_bits)
        k = ((1 << out_bits) - 1) / (hi - lo)
        bias = (-mu0 / sd0 - mu1 / sd1 - lo) * k
        (M0, M1), B, S = requant_params([k / sd0, k / sd1], bias, [self.bound[x0], self.bound[x1]])
        layer = {"name": name, "op": "add", "inputs": [x0, x1], "output": output,
                 "multipliers": [self._store(f"{name}.multiplier0", M0), self._store(f"{name}.multiplier1", M1)],
                 "bias": self._store(f"{name}.bias", B), "shift": int(S)}
        self._tensor(output, a0.shape[1:], "codes", self.spec(x0)["scale"] / float(np.median(k / sd0)), out_bits)
        self.acts[output] = sim.add(a0, a1, [M0, M1], B, S, out_bits)
        self.bound[output] = (1 << out_bits) - 1
        self.graph["layers"].append(layer)
        return output

    def max_pool(self, name, x, kernel, stride, pad, output=None):
        output = output or name
        xs = self.spec(x)
        out = sim.max_pool(self.acts[x], [kernel, kernel], stride, pad)
        self.graph["layers"].append({"name": name, "op": "max_pool", "inputs": [x], "output": output,
                                     "kernel": [kernel, kernel], "stride": stride, "pad": pad})
        self._tensor(output, out.shape[1:], "codes", xs["scale"], xs["bits"])
        self.acts[output], self.bound[output] = out, self.bound[x]
        return output

    def global_avg_pool(self, name, x, out_bits=8, output=None):
        output = output or name
        xs = self.spec(x)
        H, W, C = xs["shape"]
        sums = self.acts[x].astype(np.int64).sum(axis=(1, 2))
        top = max(float(sums.max()), 1.0)
        coeff = 0.75 * ((1 << out_bits) - 1) / top
        (M,), _, S = requant_params([[coeff]], [0.0], [H * W * ((1 << xs["bits"]) - 1)])
        m = int(M[0])
        self.graph["layers"].append({"name": name, "op": "global_avg_pool", "inputs": [x], "output": output,
                                     "multiplier": m, "shift": int(S)})
        self._tensor(output, [1, 1, C], "codes", xs["scale"] / (H * W * coeff), out_bits)
        self.acts[output] = sim.global_avg_pool(self.acts[x], m, S, out_bits)
        self.bound[output] = (1 << out_bits) - 1
        return output

    def channel_shuffle(self, name, x, groups, output=None):
        output = output or name
        xs = self.spec(x)
        self.graph["layers"].append({"name": name, "op": "channel_shuffle", "inputs": [x], "output": output,
                                     "groups": groups})
        self._tensor(output, xs["shape"], "codes", xs["scale"], xs["bits"])
        self.acts[output], self.bound[output] = sim.channel_shuffle(self.acts[x], groups), self.bound[x]
        return output

    def classifier(self, x, classes, bias=None):
        """global_avg_pool -> 8-bit codes, fc (signed 8-bit 1x1 conv, `bias` as conv's) -> int32 'logits'."""
        p = self.global_avg_pool("avgpool", x, 8)
        logits = self.conv("fc", p, classes, 1, encoding="signed", wbits=8, out_bits=None, output="logits", bias=bias)
        sd = float(self.acts[logits].astype(np.float64).std())
        self.graph["output"] = {"tensor": logits, "scale": 2.0 / sd if sd > 0 else 1.0}
        return logits

    def finish(self):
        self.progress("done")
        self.graph["format_version"] = format_version_for(self.graph)  # 3 if a conv has a bias
        return self.graph, self.stored


# -- blocks ----------------------------------------------------------------------------------


def basic_block(b: Builder, prefix, x, width, stride, prec):
    enc, wb, ab = prec
    cin = b.spec(x)["shape"][2]
    h = b.conv(f"{prefix}.conv1", x, width, 3, stride, 1, encoding=enc, wbits=wb, out_bits=ab)
    h = b.conv(f"{prefix}.conv2", h, width, 3, 1, 1, encoding=enc, wbits=wb, out_bits=None)
    short = x
    if stride != 1 or cin != width:
        short = b.conv(f"{prefix}.downsample", x, width, 1, stride, 0, encoding=enc, wbits=wb, out_bits=None)
    return b.add(f"{prefix}.add", h, short, ab)


def bottleneck(b: Builder, prefix, x, width, stride, prec, expansion=4):
    enc, wb, ab = prec
    cin = b.spec(x)["shape"][2]
    h = b.conv(f"{prefix}.conv1", x, width, 1, 1, 0, encoding=enc, wbits=wb, out_bits=ab)
    h = b.conv(f"{prefix}.conv2", h, width, 3, stride, 1, encoding=enc, wbits=wb, out_bits=ab)
    h = b.conv(f"{prefix}.conv3", h, width * expansion, 1, 1, 0, encoding=enc, wbits=wb, out_bits=None)
    short = x
    if stride != 1 or cin != width * expansion:
        short = b.conv(f"{prefix}.downsample", x, width * expansion, 1, stride, 0, encoding=enc, wbits=wb,
                       out_bits=None)
    return b.add(f"{prefix}.add", h, short, ab)


def _mean_codes(mean):
    return [int(round(m * 255)) for m in mean]


def _name(net, precision, int32_bias):
    return f"{net}-{precision}{'-bias' if int32_bias else ''}-synthetic"


def _imagenet(net, precision, seed, log, block, blocks, calib_images, int32_bias):
    b = Builder(_name(net, precision, int32_bias), [224, 224, 3], "rgb", IMAGENET_MEAN, IMAGENET_STD,
                [f"class {i}" for i in range(1000)], seed, calib_images, log, int32_bias)
    stem_bits = stage_precision(precision, 0)[2]
    x = b.conv("conv1", "image", 64, 7, 2, 3, encoding="signed", wbits=8, out_bits=stem_bits,
               pad_values=_mean_codes(IMAGENET_MEAN))
    x = b.max_pool("maxpool", x, 3, 2, 1)
    b.progress("stem")
    for s, (width, n) in enumerate(zip((64, 128, 256, 512), blocks)):
        prec = stage_precision(precision, s)
        for i in range(n):
            x = block(b, f"layer{s + 1}.{i}", x, width, 2 if (i == 0 and s > 0) else 1, prec)
        b.progress(f"layer{s + 1} ({precision if precision != 'mixed' else MIXED_STAGES[s % 2]})")
    b.classifier(x, 1000)
    return b.finish()


def resnet18(precision: str, seed: int = 0, log=None, calib_images: int = 2, int32_bias: bool = False):
    """ImageNet-shaped ResNet-18 (224x224x3, 1000 classes) with synthetic weights."""
    return _imagenet("resnet18", precision, seed, log, basic_block, (2, 2, 2, 2), calib_images, int32_bias)


def resnet50(precision: str, seed: int = 0, log=None, calib_images: int = 2, int32_bias: bool = False):
    """ImageNet-shaped ResNet-50 (torchvision v1.5: stride in the 3x3 conv) with synthetic weights."""
    return _imagenet("resnet50", precision, seed, log, bottleneck, (3, 4, 6, 3), calib_images, int32_bias)


def small_resnet(precision: str, seed: int = 0, log=None, calib_images: int = 16, int32_bias: bool = False):
    """Fashion-MNIST-shaped ResNet (28x28x1, 10 classes): 3x3 stem to 16 channels, three stages of
    one basic block (widths 16, 32, 64; stages 2 and 3 stride 2), no max pool."""
    b = Builder(_name("small_resnet", precision, int32_bias), [28, 28, 1], "gray", fashion_mnist.MEAN,
                fashion_mnist.STD, [f"class {i}" for i in range(10)], seed, calib_images, log, int32_bias)
    x = b.conv("conv1", "image", 16, 3, 1, 1, encoding="signed", wbits=8, out_bits=stage_precision(precision, 0)[2],
               pad_values=_mean_codes(fashion_mnist.MEAN))
    b.progress("stem")
    for s, (width, stride) in enumerate(zip((16, 32, 64), (1, 2, 2))):
        x = basic_block(b, f"layer{s + 1}.0", x, width, stride, stage_precision(precision, s))
        b.progress(f"layer{s + 1}")
    b.classifier(x, 10)
    return b.finish()


NETWORKS = {"resnet18": resnet18, "resnet50": resnet50, "small_resnet": small_resnet}


def build(net: str, precision: str, seed: int = 0, log=None, int32_bias: bool = False):
    """(graph, stored tensors) of network `net` at `precision` (int32_bias: every conv with an
    int32 output has a bias, format version 3)."""
    if net not in NETWORKS:
        raise ValueError(f"unknown network {net!r} (one of {', '.join(NETWORKS)})")
    stage_precision(precision, 0)  # validates the name
    return NETWORKS[net](precision, seed=seed, log=log, int32_bias=int32_bias)
