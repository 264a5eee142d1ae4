import os
import subprocess
import sys

import numpy as np
import pytest

from halibit import simulator as sim
from halibit.golden import main as golden_main
from halibit.images import random_images
from halibit.modelfile import read_model, write_model
from halibit.networks import PRECISIONS, build, stage_precision
from halibit.synthetic import main as synthetic_main

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_weights(w, encoding, bits, levels=None):
    """Independent membership check of every weight value."""
    v = set(np.unique(w).tolist())
    if encoding == "binary":
        assert bits == 1 and v == {-1, 1}
    elif encoding == "signed":
        assert 2 <= bits <= 8
        assert min(v) >= -(1 << (bits - 1)) and max(v) <= (1 << (bits - 1)) - 1
        if bits <= 4:  # the whole range is used
            assert min(v) == -(1 << (bits - 1)) and max(v) == (1 << (bits - 1)) - 1
        else:          # 8-bit weights are Gaussian: widely spread
            assert max(v) - min(v) >= 1 << (bits - 1) and len(v) >= 64
    elif encoding == "odd":
        assert 1 <= bits <= 4
        assert all(x % 2 == 1 for x in v) and v == set(range(-(1 << bits) + 1, 1 << bits, 2))
    elif encoding == "codebook":  # every level used, nothing else
        assert len(levels) == 1 << bits and v == set(levels)
    else:
        raise AssertionError(encoding)


def stage_of(layer_name):
    return int(layer_name[len("layer")]) - 1 if layer_name.startswith("layer") else None


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_small_resnet(tmp_path, precision):
    graph, tensors = build("small_resnet", precision, seed=0)
    path = tmp_path / "m.halibit"
    write_model(path, graph, tensors)
    g, t = read_model(path)  # read_model validates the whole graph too
    assert g == graph and sorted(t) == sorted(tensors)
    assert g["name"] == f"small_resnet-{precision}-synthetic"
    assert g["tensors"]["image"] == {"shape": [28, 28, 1], "type": "codes", "bits": 8, "scale": g["tensors"]["image"]["scale"]}
    assert g["input"]["color"] == "gray" and g["output"]["tensor"] == "logits"
    assert g["tensors"]["logits"]["shape"] == [1, 1, 10] and g["tensors"]["logits"]["type"] == "int32"
    assert len(g["labels"]) == 10 and g["output"]["scale"] > 0

    convs = [l for l in g["layers"] if l["op"] == "conv"]
    assert [l["name"] for l in convs] == ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1",
                                          "layer2.0.conv2", "layer2.0.downsample", "layer3.0.conv1",
                                          "layer3.0.conv2", "layer3.0.downsample", "fc"]
    assert convs[0]["pad_values"] == [73] and convs[0]["stride"] == 1 and convs[0]["kernel"] == [3, 3]
    for l in convs:
        w = t[l["weights"]["tensor"]]
        enc, bits = l["weights"]["encoding"], l["weights"]["bits"]
        assert w.dtype == np.int8
        check_weights(w, enc, bits, l["weights"].get("levels"))
        s = stage_of(l["name"])
        if s is None:  # stem and fc
            assert (enc, bits) == ("signed", 8)
        else:
            want_enc, want_bits, abits = stage_precision(precision, s)
            assert (enc, bits) == (want_enc, want_bits)
            if l["name"].endswith("conv1"):
                assert g["tensors"][l["output"]]["bits"] == abits
            else:
                assert g["tensors"][l["output"]]["type"] == "int32"
    for l in g["layers"]:
        if l["op"] == "add":
            assert g["tensors"][l["output"]]["bits"] == stage_precision(precision, stage_of(l["name"]))[2]

    images = random_images(4, 28, 28, 1, seed=0)
    logits, acts = sim.run(g, t, images, return_all=True)
    assert logits.shape == (4, 10) and logits.dtype == np.int32
    assert not (logits == logits[0]).all(axis=1).all()  # not constant across the batch
    assert len(np.unique(logits)) > 20
    for name, spec in g["tensors"].items():
        if spec["type"] != "codes" or name in ("image", "avgpool"):
            continue
        a = acts[name]
        top = (1 << spec["bits"]) - 1
        nonzero, saturated = np.mean(a > 0), np.mean(a == top)
        assert 0.1 < nonzero < 0.95, (name, nonzero)  # activations spread over the code range
        assert saturated < 0.7, (name, saturated)
        assert len(np.unique(a)) >= min(top + 1, 8), (name, np.unique(a))
    pooled = acts["avgpool"]
    assert 10 < pooled.mean() < 245 and len(np.unique(pooled)) > 10


def test_deterministic(tmp_path):
    paths = []
    for i, seed in enumerate((3, 3, 4)):
        graph, tensors = build("small_resnet", "w4a4", seed=seed)
        paths.append(tmp_path / f"{i}.halibit")
        write_model(paths[-1], graph, tensors)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b and a != c


def test_resnet18_structure():
    graph, tensors = build("resnet18", "mixed", seed=0)
    g = graph
    assert g["name"] == "resnet18-mixed-synthetic"
    assert g["input"]["mean"] == [0.485, 0.456, 0.406] and g["input"]["std"] == [0.229, 0.224, 0.225]
    assert g["tensors"]["image"]["shape"] == [224, 224, 3] and g["input"]["color"] == "rgb"
    stem = g["layers"][0]
    assert (stem["kernel"], stem["stride"], stem["pad"], stem["pad_values"]) == ([7, 7], 2, 3, [124, 116, 104])
    assert g["layers"][1]["op"] == "max_pool" and g["tensors"]["maxpool"]["shape"] == [56, 56, 64]
    assert g["tensors"]["maxpool"]["bits"] == 4  # mixed: stage 1 is w4a4
    assert len([l for l in g["layers"] if l["op"] == "conv"]) == 1 + 16 + 3 + 1
    assert len([l for l in g["layers"] if l["op"] == "add"]) == 8
    for s, (width, size, bits) in enumerate(zip((64, 128, 256, 512), (56, 28, 14, 7), (4, 2, 4, 2))):
        assert g["tensors"][f"layer{s + 1}.1.add"] == {"shape": [size, size, width], "type": "codes", "bits": bits,
                                                       "scale": g["tensors"][f"layer{s + 1}.1.add"]["scale"]}
    assert g["tensors"]["logits"]["shape"] == [1, 1, 1000] and len(g["labels"]) == 1000
    assert tensors["layer2.0.conv1.weight"].shape == (128, 3, 3, 64)
    assert set(np.unique(tensors["layer2.0.conv1.weight"]).tolist()) == {-2, -1, 0, 1}
    assert tensors["fc.weight"].shape == (1000, 1, 1, 512)


def test_cli(tmp_path):
    model = tmp_path / "s.halibit"
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    r = subprocess.run([sys.executable, "-m", "halibit.synthetic", "--net", "small_resnet", "--precision", "w1a1",
                        "--seed", "1", "-o", str(model)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "layer3" in r.stdout and model.exists()
    graph, tensors = read_model(model)
    assert graph["name"] == "small_resnet-w1a1-synthetic"

    out = tmp_path / "golden"
    assert golden_main([str(model), str(out), "--batch", "3", "--seed", "5"]) == 0
    images, logits = np.load(out / "input.npy"), np.load(out / "logits.npy")
    assert images.dtype == np.uint8 and images.shape == (3, 28, 28, 1)
    assert logits.dtype == np.int32 and logits.shape == (3, 10)
    np.testing.assert_array_equal(images, random_images(3, 28, 28, 1, seed=5))
    np.testing.assert_array_equal(logits, sim.run(graph, tensors, images))
    assert not (logits == logits[0]).all()

    assert synthetic_main(["--net", "small_resnet", "--precision", "w1a1", "--seed", "1",
                           "-o", str(tmp_path / "again.halibit")]) == 0
    assert (tmp_path / "again.halibit").read_bytes() == model.read_bytes()


@pytest.mark.skipif(not os.environ.get("HALIBIT_SLOW"), reason="set HALIBIT_SLOW=1 (about 30 s)")
def test_resnet50_golden(tmp_path):
    graph, tensors = build("resnet50", "w2a2", seed=0)
    assert len([l for l in graph["layers"] if l["op"] == "add"]) == 16
    assert tensors["layer1.0.downsample.weight"].shape == (256, 1, 1, 64)
    assert tensors["layer4.2.conv3.weight"].shape == (2048, 1, 1, 512)
    write_model(tmp_path / "r50.halibit", graph, tensors)
    assert golden_main([str(tmp_path / "r50.halibit"), str(tmp_path / "g")]) == 0
    logits = np.load(tmp_path / "g" / "logits.npy")
    assert logits.shape == (2, 1000) and not (logits[0] == logits[1]).all()
