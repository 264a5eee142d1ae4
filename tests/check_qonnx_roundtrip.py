#!/usr/bin/env python3
"""QONNX export and import of every shipped model, on the 10,000 Fashion-MNIST test images.

    PYTHONPATH=python:build/python /usr/bin/python3 tests/check_qonnx_roundtrip.py [--models models] [--images 10000]

For each models/*.halibit: `halibit.export_qonnx` writes it as QONNX; `halibit.convert` reads that
back; then
- the converted model's logits equal the original's (halibit's runtime), image for image;
- the converted model run by halibit's runtime equals the integer simulator, image for image;
- the float execution of the QONNX graph (halibit.onnx_reference) agrees in top-1 with the
  integer model on at least 99.5% of the images;
- the converted model is the original model (graph and tensors; the tensors' informative float
  scales aside), and converting its export again gives it again.
Exit status 1 with the reasons otherwise; one line per model with the figures.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))


def log(msg):
    print(f"check_qonnx_roundtrip: {msg}", file=sys.stderr, flush=True)


def float_logits(model, images, mean, std, batch=250):
    """The QONNX graph's float logits of uint8 NHWC images; the graph reads the normalised image
    (pixel/255 - mean) / std, NCHW."""
    from halibit import onnx_reference
    mean, std = np.asarray(mean), np.asarray(std)
    out = []
    for i in range(0, images.shape[0], batch):
        x = (images[i:i + batch].astype(np.float64) / 255.0 - mean) / std
        out.append(onnx_reference.run(model, {"input": x.transpose(0, 3, 1, 2)})["logits"])
    return np.concatenate(out)


def simulate(graph, tensors, images, batch=1000):
    from halibit import simulator
    return np.concatenate([simulator.run(graph, tensors, images[i:i + batch])
                           for i in range(0, images.shape[0], batch)])


def _without_scales(graph):
    """The graph without the tensors' informative float `scale` fields (float32 in QONNX)."""
    g = json.loads(json.dumps(graph))
    for spec in g["tensors"].values():
        spec.pop("scale", None)
    return g


def same_model(ga, gb, ta, tb):
    if json.dumps(ga, sort_keys=True) != json.dumps(gb, sort_keys=True):
        return "the graphs differ"
    if set(ta) != set(tb) or any(not np.array_equal(np.asarray(ta[k]), np.asarray(tb[k])) for k in ta):
        return "the stored tensors differ"
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=os.path.join(ROOT, "models"))
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--min-agreement", type=float, default=0.995)
    args = p.parse_args(argv)

    from halibit import convert, export_qonnx, fashion_mnist
    from halibit.modelfile import read_model

    images, _ = fashion_mnist.load("t10k")
    images = images[: args.images]
    failures = []
    paths = sorted(glob.glob(os.path.join(args.models, "*.halibit")))
    if not paths:
        log(f"FAIL: no models in {args.models}")
        return 1
    for path in paths:
        t0 = time.time()
        name = os.path.basename(path)
        graph, tensors = read_model(path)
        qonnx = export_qonnx.export(graph, tensors)
        g2, t2, _ = convert.convert(qonnx)
        original = run(graph, tensors, name, images)
        converted = run(g2, t2, name, images)
        simulated = simulate(g2, t2, images)
        floats = float_logits(qonnx, images, graph["input"]["mean"], graph["input"]["std"])
        agree = float(np.mean(np.argmax(floats, axis=1) == np.argmax(converted, axis=1)))
        again = convert.convert(export_qonnx.export(g2, t2))[:2]
        identical = same_model(_without_scales(graph), _without_scales(g2), tensors, t2)
        problems = []
        if not np.array_equal(original, converted):
            problems.append(f"converted logits differ from the original on {int((original != converted).any(1).sum())} images")
        if not np.array_equal(simulated, converted):
            problems.append(f"the runtime differs from the simulator on {int((simulated != converted).any(1).sum())} "
                            "images")
        if agree < args.min_agreement:
            problems.append(f"float QONNX top-1 agreement {agree:.2%} < {args.min_agreement:.1%}")
        diff = same_model(g2, again[0], t2, again[1])
        if diff:
            problems.append(f"convert(export(converted)): {diff}")
        if identical:
            problems.append(f"convert(export(model)) is not the model: {identical}")
        log(f"{name}: {images.shape[0]} images: logits {'equal' if np.array_equal(original, converted) else 'DIFFER'}; "
            f"runtime = simulator {'yes' if np.array_equal(simulated, converted) else 'NO'}; float QONNX top-1 agreement "
            f"{agree:.2%}; convert(export(model)) {'is the model' if not identical else 'DIFFERS'}; round trip "
            f"{'stable' if not diff else 'UNSTABLE'} ({time.time() - t0:.0f} s)")
        failures += [f"{name}: {p}" for p in problems]
    for f in failures:
        log(f"FAIL: {f}")
    return 1 if failures else 0


def run(graph, tensors, name, images):
    """int32 logits of halibit's runtime (one thread)."""
    import halibit
    return np.asarray(halibit.Session(halibit.Model.from_bytes(_file_bytes(graph, tensors), name)).run(images))


def _file_bytes(graph, tensors):
    import tempfile

    from halibit.modelfile import write_model
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.halibit")
        write_model(path, graph, tensors)
        with open(path, "rb") as f:
            return f.read()


if __name__ == "__main__":
    sys.exit(main())
