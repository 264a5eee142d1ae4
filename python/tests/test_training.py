"""Quantizers, PalQuant, HAWQ-V3 allocation, export and a short training run (torch)."""
import itertools
import json
import os

import numpy as np
import pytest
import torch

from halibit import fashion_mnist, simulator
from halibit.hawq import activation_error, allocate, quantization_error, unit_inputs
from halibit.modelfile import in_encoding, read_model
from halibit.qresnet import UNITS, SmallResNet, export, normalize, shuffle
from halibit.quant import ActQuant, CodebookQuant, WeightQuant
from halibit.train import main as train_main, parse_plan

HAVE_DATA = os.path.exists(os.path.join(fashion_mnist.DEFAULT_DIR, "t10k-images-idx3-ubyte.gz"))


def test_act_quant_is_on_the_grid_and_learns_its_step():
    q = ActQuant(2)
    x = torch.linspace(-1, 3, 101, requires_grad=True)
    y = q(x)
    codes = y / q.step
    assert torch.allclose(codes, codes.round(), atol=1e-5)
    assert codes.min() >= 0 and codes.max() <= 3
    y.sum().backward()
    assert q.step.grad is not None and q.step.grad.abs() > 0  # LSQ: the step is learned
    # inside the range the STE passes gradients through, outside it they stop
    inside = (x.detach() / q.step.detach() > 0) & (x.detach() / q.step.detach() < 3)
    assert torch.all(x.grad[inside] == 1) and torch.all(x.grad[x.detach() < 0] == 0)


@pytest.mark.parametrize("encoding,bits", [("signed", 2), ("signed", 4), ("signed", 8), ("binary", 1), ("odd", 2),
                                           ("odd", 3)])
def test_weight_quant_codes_are_in_the_encoding(encoding, bits):
    torch.manual_seed(0)
    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    q = WeightQuant(encoding, bits, 8)
    y = q(w)
    codes = q.integer(w.detach()).detach().numpy().astype(np.int64)
    assert np.all(in_encoding(codes, encoding, bits))
    # the forward value is exactly codes * per-channel step
    assert torch.allclose(y, torch.from_numpy(codes).float() * q.step.reshape(-1, 1, 1, 1), atol=1e-6)
    y.square().sum().backward()
    assert w.grad.abs().sum() > 0 and q.step.grad.abs().sum() > 0
    if encoding != "binary":  # every level is used by a Gaussian at the LSQ initial step
        assert len(np.unique(codes)) >= min(2 ** bits - 1, 6)


def test_codebook_quant_fits_its_levels_to_the_weights():
    torch.manual_seed(0)
    w = (torch.randn(16, 8, 3, 3) * 0.1).requires_grad_()
    q = CodebookQuant(2, 16, limit=42)
    y = q(w)
    # it starts as the signed 2-bit grid, on the file's integer grid: -2, -1, 0, 1 step units
    assert q.integer_levels().tolist() == [-42.0, -21.0, 0.0, 21.0]
    y.square().sum().backward()
    assert w.grad.abs().sum() > 0 and q.step.grad.abs().sum() > 0
    for _ in range(200):  # Lloyd steps: the levels move to the weights' k-means centres
        q(w)
    lv = q.levels
    x = (w.detach() / q.step.detach().reshape(-1, 1, 1, 1)).reshape(-1)
    nearest = (x.unsqueeze(1) - lv).abs().argmin(1)
    for k in range(4):
        assert abs(float(x[nearest == k].mean()) - float(lv[k])) < 0.02
    assert q.integer_levels().abs().max() == 42  # the largest level is the limit
    levels = q.integer_levels()
    assert levels.tolist() != [-42.0, -21.0, 0.0, 21.0]  # non-uniform now
    # the file's integers are the levels, and times the file's steps they are the eval forward
    q.eval()
    ints = q.integer(w.detach())
    assert set(ints.unique().tolist()) <= set(levels.tolist())
    assert torch.allclose(q(w), ints * q.file_steps().reshape(-1, 1, 1, 1), atol=1e-6)


def test_shuffle_matches_the_simulator():
    x = torch.arange(2 * 12 * 2 * 3, dtype=torch.float32).reshape(2, 12, 2, 3)  # NCHW
    for groups in (2, 3, 4):
        got = shuffle(x, groups).permute(0, 2, 3, 1).numpy()
        want = simulator.channel_shuffle(x.permute(0, 2, 3, 1).numpy(), groups)
        np.testing.assert_array_equal(got, want)


def test_palquant_widens_into_groups_with_shuffles():
    plain = SmallResNet(parse_plan("w2a2"))
    pal = SmallResNet(parse_plan("w2a2"), groups=2)
    for (u, a), (_, b) in zip(plain.unit_convs().items(), pal.unit_convs().items()):
        for ca, cb in zip(a, b):
            assert cb.conv.groups == 2 and cb.conv.out_channels == 2 * ca.conv.out_channels
            # each group has the plain layer's shape: G times the weights of the plain layer
            assert cb.conv.weight.numel() == 2 * ca.conv.weight.numel()
    pal(torch.randn(4, 1, 28, 28))
    graph, _ = export(pal, "pal")
    shuffles = [l for l in graph["layers"] if l["op"] == "channel_shuffle"]
    assert [l["name"] for l in shuffles] == ["layer1.0.shuffle", "layer2.0.shuffle"]
    assert all(l["groups"] == 2 for l in shuffles)
    assert all(l["groups"] == 2 for l in graph["layers"] if l["op"] == "conv" and l["name"].startswith("layer"))


def test_ilp_finds_the_brute_force_optimum():
    rng = np.random.default_rng(3)
    bits = (2, 4, 8)
    omega = {u: {b: float(rng.uniform(0, 1) / b ** 2) for b in bits} for u in UNITS}
    cost = {u: {b: float(rng.integers(1, 100) * b) for b in bits} for u in UNITS}
    budget = sum(cost[u][4] for u in UNITS)
    chosen = allocate(omega, cost, budget, bits)
    best = min((c for c in itertools.product(bits, repeat=len(UNITS))
                if sum(cost[u][b] for u, b in zip(UNITS, c)) <= budget),
               key=lambda c: sum(omega[u][b] for u, b in zip(UNITS, c)))
    assert tuple(chosen[u] for u in UNITS) == best
    with pytest.raises(ValueError, match="Infeasible"):
        allocate(omega, cost, 1.0, bits)


def test_quantization_error_falls_with_bits():
    errors = quantization_error(SmallResNet(), (2, 4, 8))
    for u in UNITS:
        assert errors[u][2] > errors[u][4] > errors[u][8] > 0


def test_activation_error_is_zero_on_the_grid_and_falls_with_bits():
    on_grid = torch.tensor([0.0, 0.5, 1.0, 1.5])  # 2-bit codes with step 0.5
    assert activation_error(on_grid, 2) == pytest.approx(0.0, abs=1e-12)
    a = torch.rand(1000, generator=torch.Generator().manual_seed(0)) * 3
    errors = [activation_error(a, b) for b in (2, 4, 8)]
    assert errors[0] > errors[1] > errors[2] > 0
    assert activation_error(torch.zeros(5), 2) == 0.0


def test_unit_inputs_leaves_the_forward_pass_alone():
    model = SmallResNet(widths=(8, 16, 32)).eval()
    x = torch.randn(2, 1, 28, 28)
    logits, inputs = unit_inputs(model, x)
    assert torch.equal(logits, model(x))
    for u, convs in model.unit_convs().items():
        assert inputs[u].shape[1] == convs[0].conv.in_channels


def _trained_briefly(plan, groups=1, steps=20):
    torch.manual_seed(0)
    model = SmallResNet(parse_plan(plan), groups, widths=(8, 16, 32))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):  # random data is enough to move BN statistics and steps off their init
        x = torch.randn(32, 1, 28, 28, generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (32,), generator=g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("plan,groups", [("w2a2", 1), ("w4a4", 1), ("w1a1", 1), ("w8a8,w4a4,w2a2", 1),
                                         ("w2a2", 2), ("w2a2odd", 1), ("w2a2codebook", 1)])
def test_export_computes_what_the_quantized_model_computes(plan, groups):
    model = _trained_briefly(plan, groups)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 28, 28, 1), dtype=np.uint8)
    with torch.no_grad():
        want = model(normalize(torch.from_numpy(images).permute(0, 3, 1, 2))).numpy()
    graph, tensors = export(model, "t")
    logits = simulator.run(graph, tensors, images).astype(np.float64) * graph["output"]["scale"]
    # Rounding ties and the stem's integer padding value move a few codes by one step; the
    # logits stay within a small fraction of their spread and the argmax almost always agrees.
    assert np.mean(np.abs(logits - want)) < 0.1 * np.std(want) + 1e-6
    assert np.mean(logits.argmax(1) == want.argmax(1)) >= 0.9


@pytest.mark.skipif(not HAVE_DATA, reason="Debian's dataset-fashion-mnist is not installed")
def test_training_smoke_run_learns_and_exports(tmp_path):
    out = tmp_path / "w4a4.halibit"
    summary = tmp_path / "summary.json"
    assert train_main(["--precision", "w4a4", "--widths", "8,16,32", "--epochs", "1", "--limit", "2560",
                       "--test-limit", "300", "--lr", "0.2", "--threads", "1", "-o", str(out),
                       "--summary", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert s["history"][0]["test_top1"] > 0.3  # 20 batches of real data: far above chance (0.1)
    assert abs(s["integer_top1"] - s["float_top1"]) < 0.05
    graph, tensors = read_model(str(out))
    images, labels = fashion_mnist.load("t10k")
    preds = np.load(str(out).replace(".halibit", ".predictions.npy"))
    np.testing.assert_array_equal(preds, simulator.run(graph, tensors, images[:300]).argmax(1))
    assert np.mean(preds == labels[:300]) == pytest.approx(s["integer_top1"])
