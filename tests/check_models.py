"""Checks the trained models shipped in models/ (ctest `shipped_models`):

* `halibit eval` on the 10,000 Fashion-MNIST test images predicts, image for image, what the
  toolkit's integer simulator predicted when the model was exported (<model>.predictions.npy),
  on avx512 (where the CPU has it), avx2 and, for 500 images, scalar;
* the simulator, rerun here on the first 200 images, still gives those predictions;
* top-1 accuracy meets the floors of docs/models.md (the codebook W2A2 model at least the uniform one);
* `halibit classify` names the true class of most bundled sample JPEGs.

    PYTHONPATH=python /usr/bin/python3 tests/check_models.py --halibit build/apps/halibit --models models
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from halibit import fashion_mnist, simulator
from halibit.modelfile import read_model
from halibit.samples import slug

MODELS = {"w8a8": "fashion-w8a8", "w4a4": "fashion-w4a4", "w2a2": "fashion-w2a2", "w1a1": "fashion-w1a1",
          "codebook": "fashion-w2a2-codebook", "palquant": "fashion-palquant-w2a2-g2", "hawq": "fashion-hawq-mixed"}
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def cpu_has_avx512():
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return all(f in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512_vnni"))


def weight_bits(graph, tensors):
    return sum(int(tensors[l["weights"]["tensor"]].size) * l["weights"]["bits"]
               for l in graph["layers"] if l["op"] == "conv")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--halibit", required=True)
    p.add_argument("--models", required=True)
    args = p.parse_args()
    images, labels = fashion_mnist.load("t10k")
    isas = (["avx512"] if cpu_has_avx512() else []) + ["avx2"]
    top1, bits = {}, {}
    with open(os.path.join(args.models, "fashion-fp32.json")) as f:
        top1["fp32"] = 100 * json.load(f)["float_top1"]
    print(f"fp32 (torch, float): {top1['fp32']:.2f}%")
    with tempfile.TemporaryDirectory() as tmp:
        for key, stem in MODELS.items():
            path = os.path.join(args.models, stem + ".halibit")
            want = np.load(os.path.join(args.models, stem + ".predictions.npy"))
            graph, tensors = read_model(path)
            bits[key] = weight_bits(graph, tensors)
            check(np.array_equal(simulator.run(graph, tensors, images[:200]).argmax(1), want[:200]),
                  f"{stem}: simulator predictions of the first 200 images are the stored ones")
            for isa in isas + ["scalar"]:
                out = os.path.join(tmp, f"{stem}-{isa}.npy")
                cmd = [args.halibit, "eval", path, "--isa", isa, "--predictions", out]
                if isa == "scalar":
                    cmd += ["--limit", "500"]
                text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                got = np.load(out)
                check(np.array_equal(got, want[:len(got)]),
                      f"{stem}: halibit eval --isa {isa} predicts as the simulator on all {len(got)} images")
                if isa == isas[0]:
                    top1[key] = 100 * float(np.mean(got == labels))
                    reported = float(re.search(r"top-1\s+([\d.]+)%", text).group(1))
                    check(abs(reported - top1[key]) < 0.006, f"{stem}: eval reports top-1 {reported:.2f}%")
    print("top-1: " + ", ".join(f"{k} {v:.2f}%" for k, v in top1.items()))
    f = top1["fp32"]
    check(f >= 92.5, f"fp32 {f:.2f}% >= 92.5%")
    check(top1["w8a8"] >= f - 0.3, f"w8a8 {top1['w8a8']:.2f}% within 0.3 of fp32")
    check(top1["w4a4"] >= f - 1.0, f"w4a4 {top1['w4a4']:.2f}% within 1.0 of fp32")
    check(top1["w2a2"] >= 90.0, f"w2a2 {top1['w2a2']:.2f}% >= 90%")
    check(top1["w1a1"] >= 87.0, f"w1a1 {top1['w1a1']:.2f}% >= 87%")
    check(top1["codebook"] >= top1["w2a2"], f"w2a2 codebook {top1['codebook']:.2f}% >= w2a2 {top1['w2a2']:.2f}%")
    check(top1["palquant"] > top1["w2a2"], f"palquant w2a2 G=2 {top1['palquant']:.2f}% > w2a2 {top1['w2a2']:.2f}%")
    check(top1["hawq"] >= top1["w4a4"], f"hawq mixed {top1['hawq']:.2f}% >= w4a4 {top1['w4a4']:.2f}%")
    check(bits["hawq"] <= bits["w4a4"], f"hawq mixed weights {bits['hawq']} bits <= w4a4 {bits['w4a4']} bits")

    samples = sorted(os.path.join(args.models, "samples", n) for n in os.listdir(os.path.join(args.models, "samples")))
    text = subprocess.run([args.halibit, "classify", os.path.join(args.models, "fashion-w2a2.halibit"), *samples,
                           "--top", "1"], check=True, capture_output=True, text=True).stdout
    tops = re.findall(r"^\s+[\d.]+%\s+(.+)$", text, flags=re.M)
    right = sum(os.path.basename(s).split("-", 1)[1].startswith(slug(t)) for s, t in zip(samples, tops))
    check(len(tops) == len(samples) and right >= 8, f"classify: {right} of {len(samples)} samples named right (>= 8)")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
