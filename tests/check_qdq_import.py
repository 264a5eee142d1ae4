#!/usr/bin/env python3
"""The ONNX QDQ int8 import, end to end: a torchvision ResNet-18, trained briefly on Fashion-MNIST
(32x32, gray replicated to RGB, ImageNet normalisation), quantized by PyTorch's FX post-training
quantization (fbgemm: per-channel weights), exported by torch.onnx.export (QuantizeLinear /
DequantizeLinear; bench/compare_peers.py's export_onnx, which also exports that benchmark's
onnxruntime int8 peer), converted by `python3 -m halibit.convert`, and run by halibit and by
onnxruntime-node on the same test images.

    PYTHONPATH=python:build/python /usr/bin/python3 tests/check_qdq_import.py [--work build/qdq] [--images 500]

Checks: the conversion succeeds; halibit's runtime equals the integer simulator image for
image; halibit's top-1 agrees with onnxruntime's on at least 99% of the images. Exit status 1 with
the reason otherwise. onnxruntime-node comes from npm (bench/compare_peers.py's installer).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def log(msg):
    print(f"check_qdq_import: {msg}", file=sys.stderr, flush=True)


def rgb32(images):
    """uint8 [N, 28, 28, 1] -> uint8 [N, 32, 32, 3]: zero border of 2, gray replicated."""
    out = np.zeros((images.shape[0], 32, 32, 3), np.uint8)
    out[:, 2:30, 2:30, :] = images
    return out


def normalised(images):
    """uint8 NHWC -> the float NCHW input the network reads."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def build_onnx(path, steps, seed):
    import torch
    import torchvision
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from halibit import fashion_mnist

    torch.manual_seed(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    images, labels = fashion_mnist.load("train")
    rng = np.random.default_rng(seed)
    model = torchvision.models.resnet18(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    model.train()
    t0 = time.time()
    for step in range(steps):
        idx = rng.integers(0, images.shape[0], 64)
        x = torch.from_numpy(normalised(rgb32(images[idx])))
        loss = torch.nn.functional.cross_entropy(model(x), torch.from_numpy(labels[idx].astype(np.int64)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"training step {step + 1}/{steps}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    model.eval()
    example = torch.from_numpy(normalised(rgb32(images[:1])))
    prepared = prepare_fx(model, get_default_qconfig_mapping("fbgemm"), (example,))
    with torch.no_grad():
        for i in range(0, 512, 64):
            prepared(torch.from_numpy(normalised(rgb32(images[i:i + 64]))))
    quantized = convert_fx(prepared)
    from compare_peers import export_onnx
    export_onnx(quantized, example, path, qdq=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=os.path.join(ROOT, "build", "qdq"), help="work directory")
    p.add_argument("--cache", default=os.path.join(ROOT, "build", "compare"), help="onnxruntime-node cache")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--steps", type=int, default=150, help="training steps (batch 64)")
    p.add_argument("--min-agreement", type=float, default=0.99)
    args = p.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)

    from halibit import fashion_mnist, simulator
    from halibit.convert import convert
    from halibit.modelfile import read_model, write_model

    onnx_path = os.path.join(args.work, "resnet18-qdq.onnx")
    if not os.path.exists(onnx_path):
        build_onnx(onnx_path, args.steps, seed=1)
    log(f"converting {os.path.relpath(onnx_path, ROOT)}")
    graph, stored, notes = convert(onnx_path, mean=list(MEAN), std=list(STD), name="resnet18-qdq",
                                   labels=fashion_mnist.LABELS)
    for n in notes:
        log(f"note: {n}")
    model_path = os.path.join(args.work, "resnet18-qdq.halibit")
    write_model(model_path, graph, stored)
    graph, tensors = read_model(model_path)

    images, labels = fashion_mnist.load("t10k")
    images = rgb32(images[: args.images])
    sim = simulator.run(graph, tensors, images)

    import halibit
    session = halibit.Session(halibit.Model(model_path), threads=1)
    ours = np.asarray(session.run(images))
    if not np.array_equal(ours, sim):
        log(f"FAIL: the runtime differs from the simulator on {int((ours != sim).any(axis=1).sum())} images")
        return 1

    from compare_peers import Failure, ort_setup
    try:
        modules = ort_setup(args.cache)
    except Failure as e:
        log(f"FAIL: onnxruntime-node: {e}")
        return 1
    inp = os.path.join(args.work, "input.f32")
    out = os.path.join(args.work, "ort_logits.f32")
    normalised(images).astype("<f4").tofile(inp)
    n = images.shape[0]
    env = dict(os.environ, NODE_PATH=modules)
    r = subprocess.run(["node", os.path.join(ROOT, "tests", "ort_run.js"), onnx_path, inp, str(n), "3", "32", "32",
                        out], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        log(f"FAIL: onnxruntime-node: {r.stderr.strip()}")
        return 1
    ort = np.fromfile(out, "<f4").reshape(n, -1)
    agree = float(np.mean(np.argmax(ort, axis=1) == np.argmax(ours, axis=1)))
    acc_h = float(np.mean(np.argmax(ours, axis=1) == labels[:n]))
    acc_o = float(np.mean(np.argmax(ort, axis=1) == labels[:n]))
    logits = ours.astype(np.float64) * graph["output"]["scale"]
    log(f"{n} images: top-1 agreement halibit/onnxruntime {agree:.2%}; accuracy halibit {acc_h:.2%}, "
        f"onnxruntime {acc_o:.2%}; largest logit difference {float(np.max(np.abs(logits - ort))):.4f}")
    if agree < args.min_agreement:
        log(f"FAIL: agreement {agree:.2%} < {args.min_agreement:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
