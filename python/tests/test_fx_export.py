"""halibit.fx_export: SmallResNet re-exports exactly as the hand-written exporter did, other
networks (halibit.archs and every supported way of writing an op) are bit-exact with the integer
simulator, and what cannot be mapped is an error naming the fx node."""
import copy
import glob
import json
import os
import shlex

import numpy as np
import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

import old_qresnet_export
from halibit import archs, simulator
from halibit.fx_export import ExportError, FxExporter, export
from halibit.images import random_images
from halibit.modelfile import read_model, write_model
from halibit.qresnet import SmallResNet, export as qresnet_export
from halibit.quant import ActQuant, QConv2d, QLinear, WeightQuant
from halibit.train import parse_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _briefly_trained(plan, groups=1, widths=(8, 16, 32), steps=6):
    torch.manual_seed(0)
    model = SmallResNet(parse_plan(plan), groups, widths=widths)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):  # random data moves BN statistics, steps and codebook levels off their init
        x = torch.randn(16, 1, 28, 28, generator=g)
        loss = F.cross_entropy(model(x), torch.randint(0, 10, (16,), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


# -- SmallResNet: identical to the hand-written exporter ------------------------------------------


@pytest.mark.parametrize("plan,groups", [("w1a1", 1), ("w2a2", 1), ("w4a4", 1), ("w8a8", 1), ("w2a2codebook", 1),
                                         ("w2a2odd", 1), ("w8a8,w8a8,w4a4,w4a4,w4a4,w3a3", 1), ("w2a2", 2)])
def test_small_resnet_exports_exactly_as_the_hand_written_exporter(plan, groups, tmp_path):
    model = _briefly_trained(plan, groups)
    want_graph, want = old_qresnet_export.export(model, "t")
    graph, stored = qresnet_export(model, "t")
    assert json.dumps(graph) == json.dumps(want_graph)  # same fields, values and order
    assert list(stored) == list(want)
    for name, a in want.items():
        assert stored[name].dtype == a.dtype and np.array_equal(stored[name], a), name
    write_model(tmp_path / "new.halibit", graph, stored)
    write_model(tmp_path / "old.halibit", want_graph, want)
    assert (tmp_path / "new.halibit").read_bytes() == (tmp_path / "old.halibit").read_bytes()


def _skeleton(graph, stored):
    """The graph without its trained numbers (scales, shifts, multipliers, levels' values)."""
    def strip(obj):
        if isinstance(obj, dict):
            return {k: (len(v) if k == "levels" else strip(v)) for k, v in obj.items()
                    if k not in ("scale", "shift", "multiplier")}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj
    g = strip({k: v for k, v in graph.items() if k not in ("name", "format_version")})
    return g, {name: (str(a.dtype), a.shape) for name, a in stored.items()}


def _shipped():
    """(model file, precision, groups, widths) of every shipped model, from its training summary."""
    out = []
    for summary in sorted(glob.glob(os.path.join(ROOT, "models", "fashion-*.json"))):
        s = json.load(open(summary))
        args = shlex.split(s.get("command", ""))
        if "-o" in args:
            out.append((args[args.index("-o") + 1], s["precision"], s["groups"], tuple(s["widths"])))
    return out


def test_every_shipped_model_has_a_training_summary():
    files = {os.path.basename(f) for f in glob.glob(os.path.join(ROOT, "models", "*.halibit"))}
    assert files and files == {os.path.basename(f) for f, *_ in _shipped()}


@pytest.mark.parametrize("path,precision,groups,widths", _shipped())
def test_shipped_models_have_the_graph_the_exporter_writes(path, precision, groups, widths):
    # Their quantized checkpoints are not kept (scripts/train_models.sh keeps only the float
    # models/fashion-fp32.pt), so the same network with other weights must export to the same
    # layers, fields, tensor shapes and stored tensors; only the trained numbers differ.
    shipped_graph, shipped = read_model(os.path.join(ROOT, path))
    model = SmallResNet(parse_plan(precision), groups, widths)
    torch.manual_seed(0)
    model.train()(torch.randn(8, 1, 28, 28))  # initialises the quantizers' steps
    graph, stored = qresnet_export(model.eval(), shipped_graph["name"])
    assert _skeleton(graph, stored) == _skeleton(shipped_graph, shipped)


# -- bit-exact with the simulator ----------------------------------------------------------------


def check_bit_exact(model, input_shape, mean, std, images, expect_unmapped=()):
    """Exports `model`, runs the simulator, and checks that the model in float64 computes exactly
    the simulator's codes at every quantized tensor and its logits (when mean * 255 are integers,
    so the file's padding value is exact). Returns the graph."""
    ex = FxExporter(model, input_shape, "t", [], mean, std)
    graph, stored = ex.run()
    logits, acts = simulator.run(graph, stored, images, return_all=True)
    m64 = copy.deepcopy(model).double().eval()
    values = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            values[n.name] = super().run_node(n)
            return values[n.name]

    x = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255.0
    x = (x - torch.tensor(mean, dtype=torch.float64).reshape(1, -1, 1, 1)) / std[0]
    with torch.no_grad():
        out = Recorder(fx.GraphModule(m64, ex.gm.graph)).run(x)
        assert torch.equal(out, m64(x))  # the traced graph is the model
    for node, name in ex.node_tensors.items():
        v = values[node]
        v = v.permute(0, 2, 3, 1) if v.dim() == 4 else v.reshape(v.shape[0], 1, 1, -1)
        codes = v.numpy() / graph["tensors"][name]["scale"]
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-6)
        np.testing.assert_array_equal(np.round(codes).astype(np.int64), acts[name], err_msg=f"{node} -> {name}")
    codes_tensors = {n for n, t in graph["tensors"].items() if t["type"] == "codes" and n != "image"}
    assert codes_tensors - set(ex.node_tensors.values()) == set(expect_unmapped)
    scaled = out.numpy() / graph["output"]["scale"]
    np.testing.assert_allclose(scaled, logits, atol=1e-6)
    assert np.ptp(logits, axis=0).max() > 0  # the images are told apart
    return graph


def _test_images(size, channels, n=6, seed=7):
    images = random_images(n, size, size, channels, seed=seed)
    images[0] = 0  # the extremes: every code saturated or zero somewhere
    images[1] = 255
    return images


def test_vgg_small_is_bit_exact_with_the_simulator():
    model, size = archs.build("vgg_small")
    # features.3 pools before its ActQuant: the file quantizes, then pools (the torch model never
    # holds the unpooled codes)
    graph = check_bit_exact(model, (3, size, size), archs.MEAN, archs.STD, _test_images(size, 3),
                            expect_unmapped={"features.3.0"})
    ops = [l["op"] for l in graph["layers"]]
    assert ops.count("max_pool") == 3 and ops.count("conv") == 8
    convs = [l for l in graph["layers"] if l["op"] == "conv"]
    assert [(l["weights"]["encoding"], l["weights"]["bits"]) for l in convs] == [
        ("signed", 8), ("signed", 4), ("signed", 4), ("signed", 3), ("signed", 2), ("binary", 1), ("signed", 4),
        ("signed", 8)]
    assert convs[-2]["kernel"] == [3, 3]  # the hidden fc reads the flattened 3x3x64 tensor
    assert graph["input"]["color"] == "rgb" and graph["layers"][0]["pad_values"] == [124, 116, 104]


def test_resnet20_palquant_is_bit_exact_with_the_simulator():
    model, size = archs.build("resnet20_palquant")
    graph = check_bit_exact(model, (3, size, size), archs.MEAN, archs.STD, _test_images(size, 3))
    ops = [l["op"] for l in graph["layers"]]
    assert ops.count("add") == 9 and ops.count("channel_shuffle") == 8 and ops.count("global_avg_pool") == 1
    convs = [l for l in graph["layers"] if l["op"] == "conv"]
    assert len(convs) == 1 + 18 + 2 + 1  # ResNet-20: stem, 9 blocks of two, 2 downsamples, fc
    assert all(l["groups"] == 2 for l in convs[1:-1]) and convs[0]["groups"] == 1
    assert [l["name"] for l in convs if "downsample" in l["name"]] == ["layer2.0.downsample.0",
                                                                         "layer3.0.downsample.0"]


def test_archs_command_line_writes_a_valid_model(tmp_path):
    out = tmp_path / "r.halibit"
    assert archs.main(["--arch", "resnet20_palquant", "--steps", "2", "-o", str(out)]) == 0
    graph, stored = read_model(out)
    assert graph["name"] == "resnet20_palquant-briefly-trained"
    assert graph["tensors"]["image"]["shape"] == [16, 16, 3]


class EveryForm(nn.Module):
    """Each supported op written another way than in qresnet and archs."""

    def __init__(self):
        super().__init__()
        self.c1 = QConv2d(1, 8, 3, 1, 1, weight=("signed", 8), bias=True)  # a float conv bias, folded
        self.b1 = nn.BatchNorm2d(8)
        self.a1 = ActQuant(3)
        self.w2 = nn.Parameter(torch.randn(8, 4, 3, 3) * 0.3)  # functional conv, grouped, odd weights
        self.q2 = WeightQuant("odd", 2, 8)
        self.b2 = nn.BatchNorm2d(8)
        self.a2 = ActQuant(3)
        self.c3 = QConv2d(8, 8, 1, weight=("codebook", 2), act_bits=3)
        self.a3 = ActQuant(2)
        self.a4 = ActQuant(3)
        self.a5 = ActQuant(8)
        self.fc = QLinear(8, 5, weight=("signed", 8), per_channel=False)

    def forward(self, x):
        x = self.a1(F.relu_(self.b1(self.c1(x))))
        y = self.b2(F.conv2d(x, self.q2(self.w2), None, 1, 1, 1, 2))
        y = self.a2(torch.relu(torch.add(y, x)))  # int32 conv + codes
        y = F.max_pool2d(y, 3, 2, 1)  # 12x12 -> 6x6, on codes
        n, c, h, w = y.shape
        y = y.reshape(n, 2, c // 2, h, w).transpose(1, 2).flatten(1, 2)  # shuffle, flattened back
        z = self.a3(self.c3(y).relu())
        s = self.a4(F.relu(z.add(y)))  # two codes tensors of different bits and scales
        p = self.a5(s.mean((2, 3), keepdim=True)).view(n, -1)
        return self.fc(p)


def test_every_form_of_the_ops_is_bit_exact_with_the_simulator():
    torch.manual_seed(0)
    model = EveryForm()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    for i in range(8):
        x = torch.rand(16, 1, 12, 12) * 2 - 0.5
        loss = F.cross_entropy(model(x), torch.randint(0, 5, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    graph = check_bit_exact(model.eval(), (1, 12, 12), [64 / 255], [0.5], _test_images(12, 1, n=8))
    assert [l["op"] for l in graph["layers"]] == ["conv", "conv", "add", "max_pool", "channel_shuffle", "conv",
                                                  "add", "global_avg_pool", "conv"]
    layers = {l["name"]: l for l in graph["layers"]}
    assert layers["c3"]["weights"]["encoding"] == "codebook" and layers["w2"]["groups"] == 2
    assert layers["w2"]["weights"]["encoding"] == "odd"  # a top-level F.conv2d is named after its weight


# -- errors ---------------------------------------------------------------------------------------


def _initialised(model, shape=(4, 1, 8, 8)):
    torch.manual_seed(0)
    model.train()(torch.randn(*shape))
    return model.eval()


class Head(nn.Module):
    """stem -> ... -> pool -> fc, with `middle` in between."""

    def __init__(self, middle=None, fc_per_channel=False, fc_bias=False):
        super().__init__()
        self.c = QConv2d(1, 4, 3, 1, 1, weight=("signed", 8))
        self.bn = nn.BatchNorm2d(4)
        self.a = ActQuant(4)
        self.middle = middle
        self.p = ActQuant(8)
        self.fc = QLinear(4, 3, fc_bias, weight=("signed", 8), per_channel=fc_per_channel)

    def forward(self, x):
        x = self.a(F.relu(self.bn(self.c(x))))
        if self.middle is not None:
            x = self.middle(x)
        return self.fc(self.p(x.mean((2, 3))))


def _export(model):
    return export(model, (1, 8, 8), "t")


def test_head_exports():
    graph, _ = _export(_initialised(Head()))
    assert [l["name"] for l in graph["layers"]] == ["c", "avgpool", "fc"]


def test_an_unsupported_function_names_the_node():
    class M(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)

    with pytest.raises(ExportError, match=r"fx node 'sigmoid' \(function torch.sigmoid in module 'middle'\): "
                                          r"torch.sigmoid is not supported"):
        _export(_initialised(Head(M())))


def test_an_unsupported_module_names_the_node():
    with pytest.raises(ExportError, match=r"fx node 'middle' \(module 'middle' \(Sigmoid\)\): Sigmoid is not "
                                          r"supported"):
        _export(_initialised(Head(nn.Sigmoid())))


def test_a_conv_without_a_weight_quantizer_is_an_error():
    class Float(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(ExportError, match=r"fx node 'middle_conv' \(module 'middle.conv' \(Conv2d\)\): Conv2d has "
                                          r"float weights"):
        _export(_initialised(Head(Float())))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 4, 3, 3))

        def forward(self, x):
            return F.conv2d(x, self.weight, padding=1)

    with pytest.raises(ExportError, match=r"fx node 'conv2d_1' \(function torch.nn.functional.conv2d in module "
                                          r"'middle'\): the weight is the float parameter 'middle.weight'"):
        _export(_initialised(Head(Functional())))


def test_a_conv_reading_float_values_is_an_error():
    class NoQuant(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = QConv2d(4, 4, 3, 1, 1, weight=("signed", 4))
            self.c2 = QConv2d(4, 4, 3, 1, 1, weight=("signed", 4))

        def forward(self, x):
            return self.c2(F.relu(self.c1(x)))

    with pytest.raises(ExportError, match=r"fx node 'conv2d_2' \(function torch.nn.functional.conv2d in module "
                                          r"'middle.c2'\): the conv's input is not quantized: put an ActQuant "
                                          r"before it"):
        _export(_initialised(Head(NoQuant())))


def test_logits_need_one_scale():
    with pytest.raises(ExportError, match=r"fx node 'output' .*one scale per class"):
        _export(_initialised(Head(fc_per_channel=True)))


def test_a_final_bias_becomes_the_int32_bias():
    """The last layer's float bias: the conv's int32 `bias` (format version 3), in whole
    accumulator units: the logits within half a unit of the float model's."""
    model = _initialised(Head(fc_bias=True))
    with torch.no_grad():
        model.fc.bias.copy_(torch.tensor([0.7, -1.3, 2.9]))
    graph, stored = _export(model)
    fc = graph["layers"][-1]
    assert graph["format_version"] == 3 and fc["bias"] == "fc.bias" and stored["fc.bias"].dtype == np.int32
    images = _test_images(8, 1)
    logits = simulator.run(graph, stored, images)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255.0 - graph["input"]["mean"][0]) / \
        graph["input"]["std"][0]
    with torch.no_grad():
        want = copy.deepcopy(model).double().eval()(x).numpy() / graph["output"]["scale"]
    assert np.abs(logits - want).max() <= 0.5 + 1e-6
    assert np.any(stored["fc.bias"] != 0)


def test_a_quantizer_that_never_saw_data_is_an_error():
    model = Head().eval()
    with pytest.raises(ExportError, match=r"fx node 'c_wq' \(module 'c.wq' \(WeightQuant\)\): the weight quantizer "
                                          r"has never seen its weight"):
        _export(model)
    model.c.wq.initialized.fill_(True)
    with pytest.raises(ExportError, match=r"fx node 'a' \(module 'a' \(ActQuant\)\): the ActQuant has never seen data"):
        _export(model)


def test_a_reshape_that_is_not_a_shuffle_is_an_error():
    class M(nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0], 4, 4, 16)

    with pytest.raises(ExportError, match=r"fx node 'reshape' \(method Tensor.reshape in module 'middle'\): "
                                          r"reshaping \[1, 4, 8, 8\] to \[1, 4, 4, 16\]"):
        _export(_initialised(Head(M())))


def test_a_float_tensor_used_twice_is_an_error():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = QConv2d(4, 4, 3, 1, 1, weight=("signed", 4))
            self.a1, self.a2 = ActQuant(4), ActQuant(4)

        def forward(self, x):
            y = self.c(x)
            return self.a1(y) + self.a2(y)

    with pytest.raises(ExportError, match=r"fx node 'conv2d_1' \(function torch.nn.functional.conv2d in module "
                                          r"'middle.c'\): its float output is used 2 times before it is quantized"):
        _export(_initialised(Head(M())))


def test_an_untraceable_model_is_an_error():
    class M(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x  # data-dependent control flow

    with pytest.raises(ExportError, match="torch.fx cannot trace Head"):
        _export(_initialised(Head(M())))


def test_qresnet_export_still_refuses_a_float_model():
    with pytest.raises(ValueError, match="not quantized"):
        qresnet_export(SmallResNet(), "t")


def test_a_kernel_outside_the_format_is_an_error():
    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = QConv2d(4, 4, 9, 1, 8, weight=("signed", 4))
            self.a = ActQuant(4)

        def forward(self, x):
            return self.a(self.c(x))

    with pytest.raises(ExportError, match=r"fx node 'conv2d_1' \(function torch.nn.functional.conv2d in module "
                                          r"'middle.c'\): kernel \[9, 9\], stride 1, pad 8: the format's windows"):
        _export(_initialised(Head(Big())))
