"""Export a PyTorch network built from halibit's quantizers and standard modules to a model file.

    graph, stored = export(model, (C, H, W), "name", labels, mean, std)
    modelfile.write_model("name.halibit", graph, stored)

The model is traced with torch.fx (in eval mode: BatchNorm running statistics, no dropout) and
mapped node by node onto the layers of docs/model-format.md. The model's input is the
normalised float image `(pixel / 255 - mean[c]) / std` (one `std` for every channel); the file
reads the raw 8-bit pixel codes and the first convolution holds the normalisation (its bias,
and `pad_values` = the mean pixel code, so padding is exact when `mean * 255` is an integer).

What the tracer sees, and what it becomes:

* Quantizers are fx leaf modules: `quant.ActQuant(bits)` marks a tensor that the file stores as
  `bits`-bit codes; a weight quantizer (`quant.WeightQuant`, `quant.CodebookQuant`, as made by
  `quant.weight_quantizer`) applied to a parameter is a quantized weight. Every quantizer must
  have seen data (its step is learned or initialised on the first batch).
* A quantized convolution is `F.conv2d(x, Q(weight), bias, stride, padding, 1, groups)` with `Q` a
  weight quantizer module: written out in any module's forward (`qresnet.ConvBN`), or through
  `quant.QConv2d` (an `nn.Conv2d` that does exactly that). Likewise a fully connected layer is
  `F.linear(x, Q(weight), bias)` or `quant.QLinear`; it becomes a conv whose kernel covers its
  input (1x1 after global pooling, H x W after `flatten` of an H x W x C tensor). Its input must
  be codes (an ActQuant's output, a max pool or shuffle of codes, or the image). A plain
  `nn.Conv2d` / `nn.Linear` module has float weights and is an error.
* Everything between a convolution and the ActQuant that quantizes its output is folded into
  the dyadic requantization (`dyadic.requant_params`): the conv's float bias, `BatchNorm2d` /
  `BatchNorm1d` (running statistics, `fold.fold_batchnorm`) and ReLU (the codes are clamped
  at 0 anyway). `nn.MaxPool2d` / `F.max_pool2d` there is moved after the quantization (max
  commutes with the monotone quantizer): the file gets conv -> codes -> `max_pool`.
* A residual add (`x + y`, `torch.add`, `Tensor.add`) of two tensors, each codes or the int32
  output of a conv(+BN), followed by ReLU and an ActQuant, is one `add` layer: a conv feeding it
  is written with an int32 output and its folded BatchNorm goes into the add's multipliers and
  bias.
* Global average pooling (`x.mean((2, 3))`, `nn.AdaptiveAvgPool2d(1)`, `F.adaptive_avg_pool2d(x,
  1)`) of codes followed by an ActQuant is `global_avg_pool`.
* Channel shuffle: `x.reshape(N, G, C // G, H, W)` (or `view`), `transpose(1, 2)` (or
  `permute(0, 2, 1, 3, 4)`), reshape / view / `flatten(1, 2)` back to `[N, C, H, W]`
  (`qresnet.shuffle`) is `channel_shuffle` with G groups, on codes.
* `flatten`, `view` / `reshape` to `[N, -1]`, `nn.Flatten`, `contiguous`, `nn.Identity`,
  `nn.Dropout` (eval) and shape arithmetic (`x.shape`, `x.size(0)`, ...) only change the view.
* The output is the int32 logits of the last conv / linear: no ActQuant after it, one weight
  step for all its output channels (`output.scale` is a single number); its float bias (or a
  BatchNorm after it) becomes the conv's int32 `bias` (format version 3), rounded to whole
  accumulator units (at most half of `output.scale` per logit).

Layer names: a convolution is named after the module whose forward calls it (`stem` for
`qresnet.ConvBN` `stem`, `features.0` for a `QConv2d`), or after the module owning its weight
when that name is taken or the call is in the top-level forward (`fc`); adds, pools and
shuffles after the module they are called in (`blocks.0.add`, `avgpool`, `blocks.0.shuffle`)
or the pooling module. `rename(name)` maps them (qresnet keeps torchvision's `layer1.0.conv1`);
duplicates get `_1`, `_2`. Tensors are named after the layer writing them; the input is
`image` and the output `logits`.

Whatever cannot be mapped raises `ExportError` naming the fx node, the module or function, and
why.
"""
from __future__ import annotations

import builtins
import dis
import inspect
import operator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .dyadic import requant_params
from .fold import fold_batchnorm
from .modelfile import FORMAT_VERSION, conv_out_size, format_version_for, validate
from .quant import ActQuant, CodebookQuant, WeightQuant

WEIGHT_QUANTIZERS = (WeightQuant, CodebookQuant)
LEAF_TYPES = (ActQuant,) + WEIGHT_QUANTIZERS
OPS_HINT = "halibit maps conv, linear, BatchNorm, ReLU, ActQuant, add, max pool, global average pool, " \
           "flatten and channel shuffle"


class ExportError(ValueError):
    """A model (or one fx node of it) that has no halibit form."""


class Tracer(fx.Tracer):
    """torch.fx tracer with halibit's quantizers as leaves; records on every node the path of the
    module whose forward created it (node.meta["halibit_module"], "" for the top level)."""

    def __init__(self):
        super().__init__()
        self._stack = []

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAF_TYPES) or super().is_leaf_module(m, qualname)

    def call_module(self, m, forward, args, kwargs):
        self._stack.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        finally:
            self._stack.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["halibit_module"] = self._stack[-1] if self._stack else ""
        return node

    def trace(self, root, concrete_args=None):
        original = fx.proxy.Proxy.__iter__
        fx.proxy.Proxy.__iter__ = _proxy_iter
        try:
            return super().trace(root, concrete_args)
        finally:
            fx.proxy.Proxy.__iter__ = original


def _proxy_iter(self):
    """Proxy.__iter__ for `n, c, h, w = x.shape`: torch 1.13 looks for the UNPACK_SEQUENCE at
    instruction index f_lasti // 2, which is wrong on Python 3.11 (inline caches); find it by
    its offset."""
    frame = inspect.currentframe().f_back
    for inst in dis.get_instructions(frame.f_code):
        if inst.offset == frame.f_lasti and inst.opname == "UNPACK_SEQUENCE":
            return (self[i] for i in range(inst.argval))
    return self.tracer.iter(self)


# -- values of fx nodes during the export --------------------------------------------------------


@dataclass
class Param:
    """A parameter or buffer (get_attr)."""
    path: str
    tensor: torch.Tensor


@dataclass
class QWeight:
    """A weight quantizer's output: the quantizer applied to a parameter."""
    quantizer: nn.Module
    path: str
    param: Param


@dataclass
class Codes:
    """A codes tensor of the file: float value = code * scale (the image: code * scale - mean / std).

    `layout` is the torch view of the [H, W, C] tensor: "nchw" [N, C, H, W]; "flat" [N, C*H*W]
    (NCHW order); "split" [N, G, C/G, H, W] and "splitT" [N, C/G, G, H, W] (a shuffle under way)."""
    tensor: str
    hwc: tuple
    bits: int
    scale: float
    layout: str = "nchw"
    groups: int = 0
    image: bool = False

    @property
    def qmax(self):
        return (1 << self.bits) - 1


@dataclass
class ConvSpec:
    """A convolution not yet written: written with codes out (ActQuant) or int32 out (add, logits)."""
    base: str
    input: str
    kernel: tuple
    stride: int
    pad: int
    groups: int
    weight: np.ndarray  # int8 [Cout, KH, KW, Cin / groups]
    encoding: str
    bits: int
    levels: list | None
    pad_values: list | None
    base_scale: float  # informative scale of its int32 accumulator
    hwc: tuple


@dataclass
class Term:
    source: object  # ConvSpec (int32 accumulator, not written yet) or a tensor name
    coeff: np.ndarray  # per channel: float value = sum of x * coeff + shift
    bound: int  # largest |x|


@dataclass
class Acc:
    """A float tensor not yet in the file: sum over terms of x * coeff[c], + shift[c], then
    optionally ReLU and max pools. kind: "conv" (one ConvSpec term), "add" (two terms), "pool"
    (global average pool of codes `pooled`)."""
    kind: str
    terms: list
    shift: np.ndarray
    hwc: tuple
    layout: str
    name: str
    relu: bool = False
    pools: list = field(default_factory=list)  # (base name, kernel, stride, pad), applied after quantization
    pooled: Codes | None = None
    pre_hwc: tuple | None = None  # the layer's output before `pools` (hwc is after them)

    def __post_init__(self):
        if self.pre_hwc is None:
            self.pre_hwc = self.hwc


VALUE_TYPES = (Param, QWeight, Codes, Acc)


def _has_value(obj) -> bool:
    if isinstance(obj, VALUE_TYPES):
        return True
    if isinstance(obj, (tuple, list)):
        return any(_has_value(o) for o in obj)
    if isinstance(obj, dict):
        return any(_has_value(o) for o in obj.values())
    return False


def _reads_shape(node) -> bool:
    """Whether an fx node only looks at its input's shape (x.shape, x.size(), x.dim())."""
    return (node.op == "call_function" and node.target is builtins.getattr) or \
        (node.op == "call_method" and node.target in ("size", "dim"))


def _np(t):
    return t.detach().cpu().double().numpy()


def _torch_shape(hwc, layout, groups=0):
    H, W, C = hwc
    if layout == "nchw":
        return (1, C, H, W)
    if layout == "flat":
        return (1, C * H * W)
    if layout == "split":
        return (1, groups, C // groups, H, W)
    if layout == "splitT":
        return (1, C // groups, groups, H, W)
    raise AssertionError(layout)


def _shape_of(v):
    return _torch_shape(v.hwc, v.layout, getattr(v, "groups", 0))


def _function_name(f) -> str:
    name = getattr(f, "__name__", repr(f))
    for prefix, mod in (("torch.nn.functional", F), ("torch", torch), ("operator", operator), ("", builtins)):
        if getattr(mod, name, None) is f:
            return f"{prefix}.{name}" if prefix else name
    module = getattr(f, "__module__", None)
    return f"{module}.{getattr(f, '__qualname__', name)}" if module else name


def _bind(args, kwargs, names, defaults):
    """Positional and keyword arguments of a torch function as a dict (names in order)."""
    out = dict(defaults)
    out.update(zip(names, args))
    out.update(kwargs)
    return out


def _pair(v, what):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return int(v[0])
        if len(v) != 2 or v[0] != v[1]:
            raise ValueError(f"{what} {tuple(v)}: the format has one {what} for both directions")
        return int(v[0])
    return int(v)


def _dims(dims, ndim):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return tuple(sorted(d % ndim for d in dims))


class FxExporter:
    """One export; `export()` is the usual entry point. After `run()`, `gm` is the traced
    GraphModule and `node_tensors` maps fx node names to the codes tensor of the file each one
    computes (the nodes whose torch value is a [N, C, H, W] or [N, C] view of codes)."""

    def __init__(self, model: nn.Module, input_shape, name: str, labels=(), mean=None, std=None, rename=None):
        if len(input_shape) != 3:
            raise ExportError(f"input_shape {tuple(input_shape)}: expected (C, H, W)")
        self.model = model
        self.C, self.H, self.W = (int(d) for d in input_shape)
        if self.C not in (1, 3):
            raise ExportError(f"input_shape {tuple(input_shape)}: the format's images are gray (C = 1) or rgb (C = 3)")
        self.mean = [float(m) for m in (mean if mean is not None else [0.0] * self.C)]
        self.std = [float(s) for s in (std if std is not None else [1.0] * self.C)]
        if len(self.mean) != self.C or len(self.std) != self.C:
            raise ExportError(f"mean {self.mean} / std {self.std}: one value per input channel ({self.C})")
        if any(s != self.std[0] for s in self.std) or self.std[0] <= 0:
            raise ExportError(f"std {self.std}: must be one positive value for every channel (a per-channel "
                              f"std would scale the first layer's integer weights per input channel)")
        self.name, self.labels = name, list(labels)
        self.rename = rename
        self.tensors, self.layers, self.stored = {}, [], {}
        self.used_names, self.claimed = set(), set()
        self.node_tensors = {}
        self.gm = None

    # -- output helpers -------------------------------------------------------------------------

    def fail(self, node, why):
        raise ExportError(f"fx node '{node.name}' ({self.describe(node)}): {why}")

    def describe(self, node) -> str:
        where = node.meta.get("halibit_module", "")
        if node.op == "call_module":
            return f"module '{node.target}' ({type(self.modules[node.target]).__name__})"
        if node.op == "call_function":
            what = f"function {_function_name(node.target)}"
        elif node.op == "call_method":
            what = f"method Tensor.{node.target}"
        else:
            what = f"{node.op} {node.target}"
        return f"{what} in module '{where}'" if where else what

    def layer_name(self, base: str) -> str:
        name = base
        if self.rename is not None:
            name = self.rename(base) if callable(self.rename) else self.rename.get(base, base)
        out, i = name, 0
        while out in self.used_names or out in ("image", "logits"):
            i += 1
            out = f"{name}_{i}"
        self.used_names.add(out)
        return out

    def site_name(self, node, op: str) -> str:
        """`<module>.<op>` for an op without parameters called in `<module>`'s forward."""
        where = node.meta.get("halibit_module", "")
        if node.op == "call_module":
            return node.target
        if not where:
            return op
        return where if where.rsplit(".", 1)[-1] == op else f"{where}.{op}"

    def tensor(self, name, shape, type_, scale, bits=None):
        spec = {"shape": [int(d) for d in shape], "type": type_}
        if bits is not None:
            spec["bits"] = int(bits)
        spec["scale"] = float(scale)
        self.tensors[name] = spec
        return name

    def store(self, name, a):
        self.stored[name] = a
        return name

    # -- the walk -------------------------------------------------------------------------------

    def run(self):
        model = self.model
        was_training = model.training
        model.eval()
        try:
            graph = Tracer().trace(model)
        except Exception as e:  # noqa: BLE001 - torch.fx raises many types
            raise ExportError(f"torch.fx cannot trace {type(model).__name__}: {type(e).__name__}: {e}") from e
        finally:
            model.train(was_training)
        self.gm = fx.GraphModule(model, graph)
        self.modules = dict(model.named_modules())
        image_scale = 1.0 / (255.0 * self.std[0])
        self.out = {"format_version": FORMAT_VERSION, "name": self.name,
                    "input": {"tensor": "image", "color": "gray" if self.C == 1 else "rgb", "mean": list(self.mean),
                              "std": list(self.std)},
                    "output": None, "labels": self.labels, "tensors": self.tensors, "layers": self.layers}
        self.tensor("image", [self.H, self.W, self.C], "codes", image_scale, 8)
        env, placeholders = {}, 0
        for node in graph.nodes:
            if node.op == "placeholder":
                placeholders += 1
                if placeholders == 1:
                    env[node] = Codes("image", (self.H, self.W, self.C), 8, image_scale, image=True)
                elif node.args:
                    env[node] = node.args[0]  # a default value
                else:
                    self.fail(node, "the model takes more than one input; the format has one image")
                continue
            if node.op == "get_attr":
                env[node] = Param(node.target, self._fetch(node.target))
                continue
            args = fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: env[n])
            if node.op == "output":
                self.output(node, args[0])
                continue
            value = self.visit(node, args, kwargs)
            if isinstance(value, Acc):
                readers = [u for u in node.users if not _reads_shape(u)]
                if len(readers) > 1:
                    self.fail(node, f"its float output is used {len(readers)} times before it is quantized; "
                                    f"quantize it once (ActQuant) and use the codes")
            if isinstance(value, Codes) and not value.image and value.layout in ("nchw", "flat") and \
                    (value.layout == "nchw" or value.hwc[:2] == (1, 1)):
                self.node_tensors[node.name] = value.tensor
            env[node] = value
        if self.out["output"] is None:
            raise ExportError("the model has no output")
        self.out["format_version"] = format_version_for(self.out)
        validate(self.out, self.stored, self.name)
        return self.out, self.stored

    def _fetch(self, target):
        obj = self.model
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    def visit(self, node, args, kwargs):
        if node.op == "call_module":
            mod = self.modules[node.target]
            for types, handler in MODULE_HANDLERS:
                if isinstance(mod, types):
                    return handler(self, node, mod, args, kwargs)
            self.fail(node, f"{type(mod).__name__} is not supported ({OPS_HINT})")
        if node.op == "call_function":
            handler = FUNCTION_HANDLERS.get(node.target)
            if handler is not None and _has_value((args, kwargs)):
                return handler(self, node, args, kwargs)
            if not _has_value((args, kwargs)):
                return node.target(*args, **kwargs)  # shape arithmetic and other Python values
            self.fail(node, f"{_function_name(node.target)} is not supported ({OPS_HINT})")
        if node.op == "call_method":
            handler = METHOD_HANDLERS.get(node.target)
            if handler is not None and isinstance(args[0], VALUE_TYPES):
                return handler(self, node, args, kwargs)
            if not _has_value((args, kwargs)):
                return getattr(args[0], node.target)(*args[1:], **kwargs)
            self.fail(node, f"Tensor.{node.target} is not supported ({OPS_HINT})")
        self.fail(node, f"fx op {node.op} is not supported")

    def need_codes(self, node, v, what):
        if isinstance(v, Codes):
            return v
        if isinstance(v, Acc):
            self.fail(node, f"{what} is not quantized: put an ActQuant before it (after any BatchNorm and ReLU)")
        if isinstance(v, (Param, QWeight)):
            self.fail(node, f"{what} is the parameter '{v.path}', not an activation")
        self.fail(node, f"{what} is {type(v).__name__} {v!r}, not an activation tensor")

    def need_acc(self, node, v, what):
        if not isinstance(v, (Acc, Codes)):
            self.need_codes(node, v, what)
        return v

    # -- convolutions ---------------------------------------------------------------------------

    def conv_name(self, node, weight: QWeight) -> str:
        where = node.meta.get("halibit_module", "")
        if where and where not in self.claimed:
            self.claimed.add(where)
            return where
        owner = weight.param.path.rsplit(".", 1)[0] if "." in weight.param.path else weight.param.path
        self.claimed.add(owner)
        return owner

    def conv(self, node, args, kwargs):
        a = _bind(args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                  {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})
        weight = self.need_qweight(node, a["weight"], "a conv", "F.conv2d(x, WeightQuant(...)(w), ...) or quant.QConv2d")
        x = self.need_codes(node, a["input"], "the conv's input")
        if x.layout != "nchw":
            self.fail(node, f"the conv's input is a {x.layout} view, not [N, C, H, W]")
        try:
            stride = _pair(a["stride"], "stride")
            dilation = _pair(a["dilation"], "dilation")
            w = weight.param.tensor.detach()
            KH, KW = int(w.shape[2]), int(w.shape[3])
            pad = a["padding"]
            if pad == "valid":
                pad = 0
            elif pad == "same":
                if stride != 1 or KH != KW or KH % 2 == 0:
                    raise ValueError("padding 'same' needs stride 1 and an odd square kernel")
                pad = KH // 2
            pad = _pair(pad, "padding")
        except ValueError as e:
            self.fail(node, str(e))
        if dilation != 1:
            self.fail(node, f"dilation {dilation} is not supported (the format's convolutions are dense)")
        self.check_window(node, (KH, KW), stride, pad)
        groups = int(a["groups"])
        H, W, C = x.hwc
        if w.dim() != 4 or w.shape[1] * groups != C:
            self.fail(node, f"weight shape {list(w.shape)} with groups {groups} does not read {C} channels")
        OH, OW = conv_out_size(H, KH, stride, pad), conv_out_size(W, KW, stride, pad)
        if OH < 1 or OW < 1:
            self.fail(node, f"a {KH}x{KW} kernel with pad {pad} does not fit the {H}x{W} input")
        q = weight.quantizer.integer(w).detach().round()
        return self._acc(node, x, weight, a["bias"], q, (KH, KW), stride, pad, groups, (OH, OW, int(w.shape[0])),
                         "nchw")

    def need_qweight(self, node, weight, layer, forms):
        """The layer's weight as a QWeight, or an error saying how to quantize it."""
        if not isinstance(weight, QWeight):
            what = f"the float parameter '{weight.path}'" if isinstance(weight, Param) else "not a parameter"
            self.fail(node, f"the weight is {what}: {layer} needs a halibit weight quantizer on its weight ({forms})")
        return weight

    def check_window(self, node, kernel, stride, pad):
        if not all(1 <= k <= 15 for k in kernel) or not 1 <= stride <= 8 or not 0 <= pad <= 7:
            self.fail(node, f"kernel {list(kernel)}, stride {stride}, pad {pad}: the format's windows are 1..15 with "
                            f"stride 1..8 and pad 0..7")

    def linear(self, node, args, kwargs):
        a = _bind(args, kwargs, ("input", "weight", "bias"), {"bias": None})
        weight = self.need_qweight(node, a["weight"], "a linear layer",
                                   "F.linear(x, WeightQuant(...)(w)) or quant.QLinear")
        x = self.need_codes(node, a["input"], "the linear layer's input")
        H, W, C = x.hwc
        if x.layout != "flat":
            self.fail(node, f"the linear layer's input is a {x.layout} view {list(_shape_of(x))}: flatten it "
                            f"to [N, features] first")
        w = weight.param.tensor.detach()
        if w.dim() != 2 or w.shape[1] != C * H * W:
            self.fail(node, f"weight shape {list(w.shape)} does not read {C * H * W} features")
        if H > 15 or W > 15:
            self.fail(node, f"its input is {H}x{W}x{C}: as a conv the kernel would be {H}x{W} (at most 15x15)")
        q = weight.quantizer.integer(w).detach().round().reshape(w.shape[0], C, H, W)
        return self._acc(node, x, weight, a["bias"], q, (H, W), 1, 0, 1, (1, 1, int(w.shape[0])), "flat")

    def _acc(self, node, x: Codes, weight: QWeight, bias, q, kernel, stride, pad, groups, hwc, layout):
        wq = weight.quantizer
        cout = hwc[2]
        qi = q.permute(0, 2, 3, 1).cpu().numpy().astype(np.int8)  # [Cout, KH, KW, Cin/groups]
        steps = _np(wq.file_steps()).reshape(-1)
        if steps.size not in (1, cout):
            self.fail(node, f"the weight quantizer '{weight.path}' has {steps.size} steps for {cout} channels")
        if steps.size == 1:
            steps = np.full(cout, steps[0])
        in_scale = x.scale
        levels = [int(v) for v in wq.integer_levels().tolist()] if wq.encoding == "codebook" else None
        pad_values = None
        shift = np.zeros(cout)
        if x.image:
            pad_values = [int(round(m * 255)) for m in self.mean]
            m = [mu / self.std[0] for mu in self.mean]
            qsum = qi.reshape(cout, -1).astype(np.float64)
            if all(v == m[0] for v in m):  # x = code * image_scale - mean / std
                shift = -m[0] * steps * qsum.sum(axis=1)
            elif groups == 1:
                shift = -(steps * (qi.astype(np.float64) * np.asarray(m)).reshape(cout, -1).sum(axis=1))
            else:
                self.fail(node, "a grouped convolution reading the image needs the same mean for every channel")
        if bias is not None:
            if not isinstance(bias, Param):
                self.fail(node, "the bias is not a parameter")
            shift = shift + _np(bias.tensor).reshape(-1)
        amax = max(x.qmax, max(pad_values) if pad_values else 0)
        bound = int(np.abs(qi.reshape(cout, -1).astype(np.int64)).sum(axis=1).max()) * amax
        spec = ConvSpec(self.conv_name(node, weight), x.tensor, kernel, stride, pad, groups, qi, wq.encoding,
                        int(wq.bits), levels, pad_values, float(np.median(in_scale * steps)), hwc)
        return Acc("conv", [Term(spec, in_scale * steps, bound)], shift, hwc, layout, spec.base)

    def emit_conv(self, spec: ConvSpec, requant=None, out_name=None, int32_bias=None):
        """Writes the conv; requant = (multiplier, bias, shift, bits, scale) for codes out, else int32
        (plus `int32_bias` per output channel when given: format version 3)."""
        name = self.layer_name(spec.base)
        out = out_name or name
        layer = {"name": name, "op": "conv", "inputs": [spec.input], "output": out, "kernel": list(spec.kernel),
                 "stride": spec.stride, "pad": spec.pad, "groups": spec.groups,
                 "weights": {"tensor": self.store(f"{name}.weight", spec.weight), "encoding": spec.encoding,
                             "bits": spec.bits}}
        if spec.levels is not None:
            layer["weights"]["levels"] = spec.levels
        if spec.pad_values is not None:
            layer["pad_values"] = spec.pad_values
        if requant is None:
            self.tensor(out, spec.hwc, "int32", spec.base_scale)
            if int32_bias is not None:
                layer["bias"] = self.store(f"{name}.bias", int32_bias)
        else:
            M, B, S, bits, scale = requant
            layer["requantize"] = {"multiplier": self.store(f"{name}.multiplier", M),
                                   "bias": self.store(f"{name}.bias", B), "shift": int(S)}
            self.tensor(out, spec.hwc, "codes", scale, bits)
        self.layers.append(layer)
        return out

    # -- folded ops -----------------------------------------------------------------------------

    def batchnorm(self, node, bn, args, kwargs):
        x = self.need_acc(node, args[0], "BatchNorm's input")
        if isinstance(x, Codes):
            self.fail(node, "BatchNorm of codes cannot be folded: it must follow the conv / linear it "
                            "normalises, before the ActQuant")
        if x.kind == "pool":
            self.fail(node, "BatchNorm after global average pooling is not supported (global_avg_pool has one "
                            "multiplier)")
        if x.relu or x.pools:
            self.fail(node, "BatchNorm after ReLU or max pooling cannot be folded into the conv")
        if bn.running_mean is None or bn.running_var is None:
            self.fail(node, "BatchNorm without running statistics (track_running_stats=False) cannot be folded")
        C = x.hwc[2]
        if isinstance(bn, nn.BatchNorm2d) and x.layout != "nchw" or isinstance(bn, nn.BatchNorm1d) and \
                (x.layout != "flat" or x.hwc[:2] != (1, 1)):
            self.fail(node, f"{type(bn).__name__} of a {x.layout} view {list(_shape_of(x))}")
        if bn.num_features != C:
            self.fail(node, f"{bn.num_features} features for {C} channels")
        gamma = _np(bn.weight) if bn.weight is not None else np.ones(C)
        beta = _np(bn.bias) if bn.bias is not None else np.zeros(C)
        scale, shift = fold_batchnorm(gamma, beta, _np(bn.running_mean), _np(bn.running_var), bn.eps)
        terms = [replace(t, coeff=t.coeff * scale) for t in x.terms]
        return replace(x, terms=terms, shift=shift + scale * x.shift)

    def relu(self, node, args, kwargs):
        x = self.need_acc(node, args[0], "ReLU's input")
        if isinstance(x, Codes):
            if x.image:
                self.fail(node, "ReLU of the normalised image is not supported")
            return x  # codes are >= 0
        return replace(x, relu=True)

    def identity(self, node, args, kwargs):
        return self.need_acc(node, args[0], "the input")

    def dropout(self, node, args, kwargs):
        a = _bind(args, kwargs, ("input", "p", "training", "inplace"), {"p": 0.5, "training": True})
        if a["training"]:
            self.fail(node, "dropout with training=True (pass training=self.training)")
        return self.identity(node, args, kwargs)

    def act_quant(self, node, aq: ActQuant, args, kwargs):
        if not bool(aq.initialized):
            self.fail(node, "the ActQuant has never seen data (its step is the initial 1.0): run the model on a "
                            "batch in train mode (or train it) before exporting")
        x = self.need_acc(node, args[0], "ActQuant's input")
        if isinstance(x, Codes):
            why = "the normalised image" if x.image else "already codes"
            self.fail(node, f"its input is {why}: a second quantization (requantizing codes) is not a layer of "
                            f"the format")
        step = float(aq.step)
        if not step > 0:
            self.fail(node, f"step {step} is not positive")
        bits = int(aq.bits)
        if x.kind == "conv":
            t = x.terms[0]
            (M,), B, S = requant_params([t.coeff / step], x.shift / step, [t.bound])
            out = self.emit_conv(t.source, (M, B, S, bits, step))
        elif x.kind == "add":
            out = self.layer_name(x.name)
            (M0, M1), B, S = requant_params([t.coeff / step for t in x.terms], x.shift / step,
                                            [t.bound for t in x.terms])
            self.layers.append({"name": out, "op": "add", "inputs": [t.source for t in x.terms], "output": out,
                                "multipliers": [self.store(f"{out}.multiplier0", M0),
                                                self.store(f"{out}.multiplier1", M1)],
                                "bias": self.store(f"{out}.bias", B), "shift": int(S)})
            self.tensor(out, x.pre_hwc, "codes", step, bits)
        else:  # pool
            p = x.pooled
            H, W, C = p.hwc
            (M,), _, S = requant_params([[p.scale / (H * W * step)]], [0.0], [H * W * p.qmax])
            out = self.layer_name(x.name)
            self.layers.append({"name": out, "op": "global_avg_pool", "inputs": [p.tensor], "output": out,
                                "multiplier": int(M[0]), "shift": int(S)})
            self.tensor(out, [1, 1, C], "codes", step, bits)
        codes = Codes(out, x.pre_hwc, bits, step)
        for base, kernel, stride, pad in x.pools:
            codes = self.emit_max_pool(base, codes, kernel, stride, pad)
        return replace(codes, layout=x.layout)

    # -- glue -----------------------------------------------------------------------------------

    def add(self, node, args, kwargs):
        a = _bind(args, kwargs, ("input", "other", "alpha"), {"alpha": 1})
        if a["alpha"] != 1:
            self.fail(node, f"alpha {a['alpha']} is not supported")
        xs = [a["input"], a["other"]]
        for v in xs:
            if not isinstance(v, (Codes, Acc)):
                self.fail(node, f"adding {type(v).__name__} {v!r}: only the sum of two activation tensors is "
                                f"an add layer")
        if xs[0].hwc != xs[1].hwc or _shape_of(xs[0]) != _shape_of(xs[1]):
            self.fail(node, f"the shapes {list(_shape_of(xs[0]))} and {list(_shape_of(xs[1]))} differ")
        if xs[0].layout != "nchw" and not (xs[0].layout == "flat" and xs[0].hwc[:2] == (1, 1)):
            self.fail(node, f"adding {xs[0].layout} views is not supported")
        terms, shifts = [], []
        for v in xs:
            if isinstance(v, Codes):
                if v.image:
                    self.fail(node, "the normalised image cannot be an input of an add")
                terms.append(Term(v.tensor, np.full(v.hwc[2], v.scale), v.qmax))
                shifts.append(0.0)
                continue
            if v.kind != "conv":
                self.fail(node, "an add of more than two tensors (or of a global pool) is not an add layer: "
                                "quantize the first sum (ActQuant) before adding a third tensor")
            if v.relu or v.pools:
                self.fail(node, "an input of the add has a ReLU or a max pool before it is quantized; quantize "
                                "it (ActQuant) first, or add the conv's output directly")
            t = v.terms[0]
            terms.append(Term(self.emit_conv(t.source), t.coeff, t.bound))
            shifts.append(v.shift)
        shift = np.broadcast_to(np.asarray(shifts[0] + shifts[1], dtype=np.float64), (xs[0].hwc[2],)).copy()
        return Acc("add", terms, shift, xs[0].hwc, xs[0].layout, self.site_name(node, "add"))

    def max_pool(self, node, args, kwargs, mod=None):
        if mod is not None:
            a = {"input": args[0], "kernel_size": mod.kernel_size, "stride": mod.stride, "padding": mod.padding,
                 "dilation": mod.dilation, "ceil_mode": mod.ceil_mode, "return_indices": mod.return_indices}
        else:
            a = _bind(args, kwargs, ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                     "return_indices"),
                      {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
        x = self.need_acc(node, a["input"], "the max pool's input")
        k = a["kernel_size"]
        kernel = tuple(k) if isinstance(k, (tuple, list)) else (k, k)
        try:
            stride = _pair(a["stride"] if a["stride"] not in (None, []) else kernel, "stride")
            pad = _pair(a["padding"], "padding")
            dilation = _pair(a["dilation"], "dilation")
        except ValueError as e:
            self.fail(node, str(e))
        if dilation != 1 or a["ceil_mode"] or a["return_indices"]:
            self.fail(node, "dilation, ceil_mode and return_indices are not supported")
        self.check_window(node, kernel, stride, pad)
        if x.layout != "nchw":
            self.fail(node, f"max pooling a {x.layout} view")
        H, W, C = x.hwc
        OH, OW = (H + 2 * pad - kernel[0]) // stride + 1, (W + 2 * pad - kernel[1]) // stride + 1
        if pad >= min(kernel) or OH < 1 or OW < 1:
            self.fail(node, f"kernel {list(kernel)} with pad {pad} on {H}x{W}")
        base = self.site_name(node, "maxpool")
        if isinstance(x, Codes):
            if x.image:
                self.fail(node, "max pooling the image is not supported (the normalisation is folded into a conv)")
            return self.emit_max_pool(base, x, kernel, stride, pad)
        if x.kind == "pool":
            self.fail(node, "max pooling after global average pooling")
        return replace(x, pools=x.pools + [(base, kernel, stride, pad)], hwc=(OH, OW, C))

    def emit_max_pool(self, base, x: Codes, kernel, stride, pad):
        H, W, C = x.hwc
        OH, OW = (H + 2 * pad - kernel[0]) // stride + 1, (W + 2 * pad - kernel[1]) // stride + 1
        name = self.layer_name(base)
        self.layers.append({"name": name, "op": "max_pool", "inputs": [x.tensor], "output": name,
                            "kernel": [int(kernel[0]), int(kernel[1])], "stride": stride, "pad": pad})
        self.tensor(name, [OH, OW, C], "codes", x.scale, x.bits)
        return Codes(name, (OH, OW, C), x.bits, x.scale)

    def global_pool(self, node, x, keepdim, base):
        x = self.need_acc(node, x, "global average pooling's input")
        if isinstance(x, Acc):
            self.fail(node, "global average pooling of a tensor that is not quantized: put an ActQuant before it")
        if x.image:
            self.fail(node, "global average pooling of the image is not supported")
        if x.layout != "nchw":
            self.fail(node, f"global average pooling of a {x.layout} view")
        C = x.hwc[2]
        return Acc("pool", [], np.zeros(C), (1, 1, C), "nchw" if keepdim else "flat", base, pooled=x)

    def mean(self, node, args, kwargs):
        a = _bind(args, kwargs, ("input", "dim", "keepdim", "dtype"), {"dim": None, "keepdim": False, "dtype": None})
        x = a["input"]
        if not isinstance(x, (Codes, Acc)) or x.layout != "nchw" or a["dim"] is None or \
                _dims(a["dim"], 4) != (2, 3):
            self.fail(node, "only the mean over dims (2, 3) of an [N, C, H, W] tensor (global average pooling) "
                            "is supported")
        return self.global_pool(node, x, bool(a["keepdim"]), self.site_name(node, "avgpool"))

    def adaptive_avg_pool(self, node, args, kwargs, mod=None):
        size = mod.output_size if mod is not None else _bind(args, kwargs, ("input", "output_size"), {})["output_size"]
        if size not in (1, (1, 1), [1, 1]):
            self.fail(node, f"output size {size}: only global average pooling (output size 1) is supported")
        return self.global_pool(node, args[0], True, self.site_name(node, "avgpool"))

    # -- views ----------------------------------------------------------------------------------

    def shape_attr(self, node, args, kwargs):
        x, attr = args[0], args[1]
        if isinstance(x, Param):
            return getattr(x.tensor, attr)
        if not isinstance(x, (Codes, Acc)):
            self.need_codes(node, x, "the tensor")
        if attr == "shape":
            return torch.Size(_shape_of(x))
        if attr == "ndim":
            return len(_shape_of(x))
        self.fail(node, f"attribute '{attr}' of an activation is not supported")

    def size(self, node, args, kwargs):
        shape = torch.Size(_shape_of(self.need_acc(node, args[0], "the tensor")))
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        return shape if dim is None else shape[dim]

    def dim(self, node, args, kwargs):
        return len(_shape_of(self.need_acc(node, args[0], "the tensor")))

    def getitem(self, node, args, kwargs):
        self.fail(node, "indexing or slicing an activation tensor is not supported")

    def reshape(self, node, args, kwargs):
        x = self.need_acc(node, args[0], "the tensor")
        shape = args[1:] if len(args) > 1 else (kwargs.get("shape", kwargs.get("size")),)
        if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
            shape = tuple(shape[0])
        cur = _shape_of(x)
        numel = int(np.prod(cur))
        shape = [int(d) for d in shape]
        if shape.count(-1) > 1:
            self.fail(node, f"shape {shape}")
        if -1 in shape:
            rest = int(np.prod([d for d in shape if d != -1]))
            shape[shape.index(-1)] = numel // rest if rest and numel % rest == 0 else -1
        if int(np.prod(shape)) != numel:
            self.fail(node, f"cannot view {list(cur)} as {shape}")
        return self.relayout(node, x, tuple(shape))

    def relayout(self, node, x, target):
        H, W, C = x.hwc
        cur = _shape_of(x)
        if target == cur:
            return x
        if x.layout == "splitT" and len(target) != 5:  # the shuffle back to channels
            if isinstance(x, Acc):
                self.fail(node, "a channel shuffle of a tensor that is not quantized: put an ActQuant before it")
            name = self.layer_name(self.site_name(node, "shuffle"))
            self.layers.append({"name": name, "op": "channel_shuffle", "inputs": [x.tensor], "output": name,
                                "groups": x.groups})
            self.tensor(name, [H, W, C], "codes", x.scale, x.bits)
            x = Codes(name, (H, W, C), x.bits, x.scale)
            return self.relayout(node, x, target)
        if target == (1, C, H, W):
            return replace(x, layout="nchw", groups=0) if isinstance(x, Codes) else replace(x, layout="nchw")
        if target == (1, C * H * W) and x.layout in ("nchw", "flat", "split"):
            return replace(x, layout="flat", groups=0) if isinstance(x, Codes) else replace(x, layout="flat")
        if len(target) == 5 and target[0] == 1 and target[3:] == (H, W) and target[1] * target[2] == C:
            if x.layout == "nchw":
                if isinstance(x, Acc):
                    self.fail(node, "a channel shuffle of a tensor that is not quantized: put an ActQuant before it")
                return replace(x, layout="split", groups=target[1])
        self.fail(node, f"reshaping {list(cur)} to {list(target)} is neither a flatten nor part of a channel "
                        f"shuffle ([N, G, C/G, H, W], transpose(1, 2), back to [N, C, H, W])")

    def flatten(self, node, args, kwargs, mod=None):
        if mod is not None:
            start, end = mod.start_dim, mod.end_dim
        else:
            a = _bind(args, kwargs, ("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            start, end = a["start_dim"], a["end_dim"]
        x = self.need_acc(node, args[0], "the tensor")
        cur = _shape_of(x)
        start, end = start % len(cur), end % len(cur)
        if start == 0:
            self.fail(node, "flattening the batch dimension is not supported (use flatten(x, 1))")
        target = cur[:start] + (int(np.prod(cur[start:end + 1])),) + cur[end + 1:]
        return self.relayout(node, x, target)

    def transpose(self, node, args, kwargs):
        x = self.need_acc(node, args[0], "the tensor")
        a = _bind(args, kwargs, ("input", "dim0", "dim1"), {})
        nd = len(_shape_of(x))
        if x.layout in ("split", "splitT") and _dims((a["dim0"], a["dim1"]), nd) == (1, 2):
            return replace(x, layout="splitT" if x.layout == "split" else "split")
        self.fail(node, f"transpose of dims {a['dim0']}, {a['dim1']} of {list(_shape_of(x))} is not part of a "
                        f"channel shuffle")

    def permute(self, node, args, kwargs):
        x = self.need_acc(node, args[0], "the tensor")
        dims = args[1:] if len(args) > 1 else (kwargs.get("dims"),)
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        nd = len(_shape_of(x))
        dims = tuple(d % nd for d in dims)
        if dims == tuple(range(nd)):
            return x
        if x.layout in ("split", "splitT") and dims == (0, 2, 1, 3, 4):
            return replace(x, layout="splitT" if x.layout == "split" else "split")
        self.fail(node, f"permute {list(dims)} of {list(_shape_of(x))} is not part of a channel shuffle")

    # -- modules ---------------------------------------------------------------------------------

    def weight_quant(self, node, mod, args, kwargs):
        if not bool(mod.initialized):
            self.fail(node, "the weight quantizer has never seen its weight (its steps are the initial 1.0): run "
                            "the model on a batch in train mode (or train it) before exporting")
        if not isinstance(args[0], Param):
            self.fail(node, "a weight quantizer must be applied to a parameter (the conv's or linear layer's "
                            "weight)")
        return QWeight(mod, node.target, args[0])

    def float_layer(self, node, mod, args, kwargs):
        self.fail(node, f"{type(mod).__name__} has float weights: a halibit layer needs a weight quantizer "
                        f"(quant.QConv2d / quant.QLinear, or F.conv2d / F.linear on a WeightQuant's output)")

    def output(self, node, value):
        if isinstance(value, (tuple, list, dict)):
            self.fail(node, "the model returns several values; the format has one output (the logits)")
        if isinstance(value, Codes):
            self.fail(node, "the output is codes (quantized by an ActQuant): the output must be the int32 logits of "
                            "the last conv / linear layer")
        if not isinstance(value, Acc):
            self.need_codes(node, value, "the output")
        if value.kind != "conv":
            self.fail(node, "the output must be the int32 logits of a conv / linear layer")
        t = value.terms[0]
        if value.hwc[:2] != (1, 1):
            self.fail(node, f"the output is {list(_shape_of(value))}: the logits must be [N, classes]")
        if value.relu or value.pools:
            self.fail(node, "a ReLU or max pool after the last layer cannot be applied to int32 logits")
        coeff = t.coeff
        if not np.all(coeff == coeff[0]) or not coeff[0] > 0:
            self.fail(node, "the last layer's logits have one scale per class (per-channel weight steps or "
                            "BatchNorm); use one weight step (WeightQuant(..., per_channel=False))")
        classes = value.hwc[2]
        if self.labels and len(self.labels) != classes:
            raise ExportError(f"{len(self.labels)} labels for {classes} classes")
        scale = float(coeff[0])
        spec = replace(t.source, base_scale=scale)
        bias = None
        if np.any(value.shift != 0):  # a bias or BatchNorm after the last layer: whole accumulator units
            bias = np.round(np.asarray(value.shift, np.float64) / scale)
            if np.max(np.abs(bias)) > (1 << 31) - 2:
                self.fail(node, "the last layer's bias is beyond int32 in accumulator units")
            bias = bias.astype(np.int32)
        self.emit_conv(spec, out_name="logits", int32_bias=bias)
        self.out["output"] = {"tensor": "logits", "scale": scale}


def _module_handler(method):
    return lambda self, node, mod, args, kwargs: method(self, node, args, kwargs)


MODULE_HANDLERS = [
    (ActQuant, FxExporter.act_quant),
    (WEIGHT_QUANTIZERS, FxExporter.weight_quant),
    ((nn.BatchNorm2d, nn.BatchNorm1d), FxExporter.batchnorm),
    (nn.ReLU, _module_handler(FxExporter.relu)),
    (nn.MaxPool2d, lambda self, node, mod, args, kwargs: self.max_pool(node, args, kwargs, mod)),
    (nn.AdaptiveAvgPool2d, lambda self, node, mod, args, kwargs: self.adaptive_avg_pool(node, args, kwargs, mod)),
    (nn.Flatten, lambda self, node, mod, args, kwargs: self.flatten(node, args, kwargs, mod)),
    ((nn.Identity, nn.Dropout, nn.Dropout2d), _module_handler(FxExporter.identity)),
    ((nn.Conv2d, nn.Linear), FxExporter.float_layer),
]

FUNCTION_HANDLERS = {
    torch.conv2d: FxExporter.conv,
    F.linear: FxExporter.linear,
    operator.add: FxExporter.add,
    torch.add: FxExporter.add,
    F.relu: FxExporter.relu,
    torch.relu: FxExporter.relu,
    F.relu_: FxExporter.relu,
    torch.relu_: FxExporter.relu,
    F.max_pool2d: FxExporter.max_pool,
    torch.max_pool2d: FxExporter.max_pool,
    F.adaptive_avg_pool2d: FxExporter.adaptive_avg_pool,
    torch.mean: FxExporter.mean,
    torch.flatten: FxExporter.flatten,
    torch.reshape: FxExporter.reshape,
    torch.transpose: FxExporter.transpose,
    torch.swapaxes: FxExporter.transpose,
    torch.permute: FxExporter.permute,
    F.dropout: FxExporter.dropout,
    builtins.getattr: FxExporter.shape_attr,
    operator.getitem: FxExporter.getitem,
}

METHOD_HANDLERS = {
    "add": FxExporter.add,
    "add_": FxExporter.add,
    "relu": FxExporter.relu,
    "relu_": FxExporter.relu,
    "mean": FxExporter.mean,
    "flatten": FxExporter.flatten,
    "reshape": FxExporter.reshape,
    "view": FxExporter.reshape,
    "transpose": FxExporter.transpose,
    "swapaxes": FxExporter.transpose,
    "permute": FxExporter.permute,
    "contiguous": FxExporter.identity,
    "size": FxExporter.size,
    "dim": FxExporter.dim,
}


def export(model: nn.Module, input_shape, name: str, labels=(), mean=None, std=None, rename=None):
    """(graph, stored tensors) of `model` (see the module docstring) for uint8 images of
    `input_shape` = (C, H, W) normalised as (pixel / 255 - mean[c]) / std; `rename` maps layer
    names (a callable or a dict). Raises ExportError for what has no halibit form."""
    return FxExporter(model, input_shape, name, labels, mean, std, rename).run()
