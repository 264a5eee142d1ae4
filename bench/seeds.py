#!/usr/bin/python3
"""The four source papers' headline claims, measured on this machine: writes docs/seeds.md.

    /usr/bin/python3 bench/seeds.py [--build build] [--work build/seeds] [--out docs/seeds] [--repeat 20]

One run, on the machine it runs on, single thread, each ratio from measurements taken in the
same run (interleaved where the tool allows):

- DeepGEMM (2-bit lookup tables vs 8-bit QNNPACK, x86: up to 1.74x): halibit-bench-kernels,
  the pairwise W2A2 table kernel, and the table kernels on a 4-level codebook's index planes,
  against xnnpack_qs8, geomean of the four ResNet-18 3x3 layers (bench/results.py's benchmark
  runner: fastest of interleaved repetitions).
- Bit-serial operators (ResNet-18 end to end 3.9x optimised floating point, ARM):
  bench/compare_peers.py, ResNet-18 w2a2 against the faster of onnxruntime fp32 and PyTorch fp32,
  batch 1.
- PalQuant (parallel 2-bit groups: +0.52 points over 4-bit, 1.78x faster on a 2-bit
  accelerator): the shipped Fashion-MNIST models, `halibit eval` top-1 and `halibit bench`
  latency of the PalQuant W2A2 G=2 model against the W4A4 model.
- HAWQ-V3 (INT4 1.45x INT8 on ResNet-50; mixed INT4/8 23% below INT8 latency within one
  point): compare_peers' ResNet-50 w4a4 against w8a8, and the shipped mixed-precision
  Fashion-MNIST model against the w8a8 one (top-1 and latency).

The table gives the claim, its source setting, halibit's figure, the ratio against the claim and
the command behind each figure; docs/seeds.png plots ratio / claim.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import results  # noqa: E402  (bench/results.py: the kernel benchmark runner and CPU description)

PY = "/usr/bin/python3"


def log(msg):
    print(f"seeds: {msg}", file=sys.stderr, flush=True)


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def run(cmd, **kw):
    log(" ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) and c.startswith(ROOT) else c for c in cmd))
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-1500:]}")
    return r


# -- measurements -------------------------------------------------------------------------------


def deepgemm(build, avx512, repetitions):
    """The pairwise table (DeepGEMM's algorithm) and the table kernels on a 4-level codebook's index
    planes, each against xnnpack_qs8, in one run."""
    isa = "avx512" if avx512 else "avx2"
    engines = [f"lut_pairwise_w2a2_{isa}", f"codebook_w2a2_{isa}"]
    binary = os.path.join(build, "bench", "halibit-bench-kernels")
    times = results.bench(binary, engines + ["xnnpack_qs8"], {}, repetitions, 0.2)
    command = (f"build/bench/halibit-bench-kernels --benchmark_filter='^conv/({'|'.join(engines)}|xnnpack_qs8)/.*threads:1$' "
               f"--benchmark_repetitions={repetitions} --benchmark_enable_random_interleaving=true")
    out = []
    for engine in engines:
        per = {layer: times[("xnnpack_qs8", layer)] / times[(engine, layer)] for layer in results.GEOMEAN_LAYERS}
        out.append({"engine": engine, "per_layer": per, "ratio": geomean(per.values()), "command": command})
    return out


def peers(work, build, repeat):
    """ResNet-18 w2a2 and ResNet-50 w4a4 / w8a8 (halibit) with the fp32 peers, one thread."""
    cache = os.path.join(work, "compare")
    cmd = [PY, os.path.join(ROOT, "bench", "compare_peers.py"), "--nets", "resnet18,resnet50",
           "--precisions", "w2a2,w4a4,w8a8", "--threads", "1", "--batch", "1", "--rounds", "1",
           "--repeat", str(repeat),
           "--cache", cache, "--out", os.path.join(work, "compare_peers"),
           "--halibit", os.path.join(build, "apps", "halibit")]
    run(cmd, timeout=7200)
    with open(os.path.join(cache, "results.json")) as f:
        data = json.load(f)
    lat = {}
    for r in data["runs"]:
        if "latency_ms" in r and r.get("batch", 1) == 1:
            lat[(r["net"], r["engine"], r["precision"])] = r["latency_ms"]["median"]
    shown = " ".join(c if not c.startswith(ROOT) else os.path.relpath(c, ROOT) for c in cmd[1:])
    return lat, data.get("versions", {}), f"/usr/bin/python3 {shown}"


def halibit_bench(build, model, repeat):
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        run([os.path.join(build, "apps", "halibit"), "bench", model, "--repeat", str(repeat), "--json", f.name])
        with open(f.name) as g:
            return json.load(g)["latency_ms"]["median"]


def halibit_eval(build, model):
    out = run([os.path.join(build, "apps", "halibit"), "eval", model]).stdout
    m = re.search(r"top-1\s+([0-9.]+)%", out)
    if not m:
        raise RuntimeError(f"halibit eval {model}: no top-1 in its output")
    return float(m.group(1))


def paired_latency(build, a, b, repeat, rounds=5):
    """Median latency of models a and b, measured alternately (rounds of `repeat` runs each)."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(halibit_bench(build, a, repeat))
        tb.append(halibit_bench(build, b, repeat))
    return sorted(ta)[len(ta) // 2], sorted(tb)[len(tb) // 2]


# -- report -----------------------------------------------------------------------------------


def write(out, rows, machine, versions, extra):
    md = [
        "# The source papers' claims on this machine",
        "",
        f"Generated by `/usr/bin/python3 bench/seeds.py` on {datetime.date.today().isoformat()}: {machine}, "
        "one thread, batch 1. Each ratio comes from measurements of the same run. \"ratio / claim\" is "
        "halibit's ratio divided by the paper's (1.0 or more: the claim holds here); accuracy rows compare "
        "point differences.",
        "",
        "| paper | claim (source setting) | halibit here | ratio | claim | ratio / claim | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("points"):  # an accuracy difference: compared, not divided
            md.append(f"| {r['paper']} | {r['claim']} | {r['figure']} | {r['ratio']:+.2f} points | "
                      f"{r['target']:+.2f} points | **{'met' if r['ratio'] >= r['target'] else 'not met'}** | "
                      f"`{r['command']}` |")
        else:
            md.append(f"| {r['paper']} | {r['claim']} | {r['figure']} | {r['ratio']:.2f} | {r['target']:.2f} | "
                      f"**{r['ratio'] / r['target']:.2f}** | `{r['command']}` |")
    md += ["", "## Details", ""] + extra + ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
                                            "", "![ratio / claim](seeds.png)", ""]
    with open(out + ".md", "w") as f:
        f.write("\n".join(md))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing (scripts/setup.sh --peers): no plot")
        return
    fig, ax = plt.subplots(figsize=(8, 3.2))
    rows = [r for r in rows if not r.get("points")]
    names = [f"{r['paper']}\n{r['short']}" for r in rows]
    vals = [r["ratio"] / r["target"] for r in rows]
    ax.barh(names[::-1], vals[::-1], color=["#2a7" if v >= 1 else "#c44" for v in vals[::-1]])
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xlabel("halibit's ratio / the paper's claim")
    ax.set_title(machine.split(" (")[0] + ", one thread", fontsize=9)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--work", default=os.path.join(ROOT, "build", "seeds"))
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "seeds"), help="writes OUT.md and OUT.png")
    p.add_argument("--repeat", type=int, default=20, help="timed runs per whole-network measurement")
    p.add_argument("--repetitions", type=int, default=5, help="interleaved repetitions per kernel benchmark")
    args = p.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    machine, avx512 = results.cpu()
    models = os.path.join(ROOT, "models")
    rows, extra = [], []

    pairwise, codebook = deepgemm(args.build, avx512, args.repetitions)
    rows.append({"paper": "DeepGEMM", "short": "W2A2 table / QNNPACK",
                 "claim": "2-bit lookup-table kernels up to 1.74x 8-bit QNNPACK (x86)",
                 "figure": f"`{pairwise['engine']}` (the pairwise product table) vs `xnnpack_qs8`, "
                           "geomean of 4 ResNet-18 3x3 layers",
                 "ratio": pairwise["ratio"], "target": 1.74, "command": pairwise["command"]})
    rows.append({"paper": "DeepGEMM", "short": "W2A2 codebook / QNNPACK",
                 "claim": "the same, for the non-uniform 2-bit weights only a table runs",
                 "figure": f"`{codebook['engine']}` (table_conv on the 4-level codebook's three index planes) "
                           "vs `xnnpack_qs8`, same run",
                 "ratio": codebook["ratio"], "target": 1.74, "command": codebook["command"]})
    for dg in (pairwise, codebook):
        extra.append("DeepGEMM, per layer (time xnnpack_qs8 / time " + dg["engine"] + "): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in dg["per_layer"].items()))

    lat, versions, cmd = peers(args.work, args.build, args.repeat)
    fp32 = {e: lat.get(("resnet18", e, "fp32")) for e in ("onnxruntime", "pytorch")}
    best = min(v for v in fp32.values() if v)
    w2a2 = lat[("resnet18", "halibit", "w2a2")]
    rows.append({"paper": "Bit-serial", "short": "ResNet-18 w2a2 / fp32",
                 "claim": "ResNet-18 end to end 3.9x optimised floating point (ARM)",
                 "figure": f"ResNet-18 w2a2 {w2a2:.2f} ms vs fp32 {best:.2f} ms", "ratio": best / w2a2, "target": 3.9,
                 "command": cmd})
    extra.append(f"Whole networks (median ms, one thread): ResNet-18 halibit w2a2 {w2a2:.2f}, onnxruntime fp32 "
                 f"{fp32['onnxruntime'] or float('nan'):.2f}, PyTorch fp32 {fp32['pytorch'] or float('nan'):.2f}; "
                 f"ResNet-50 halibit w4a4 {lat[('resnet50', 'halibit', 'w4a4')]:.2f}, w8a8 "
                 f"{lat[('resnet50', 'halibit', 'w8a8')]:.2f}.")

    pal, w4 = os.path.join(models, "fashion-palquant-w2a2-g2.halibit"), os.path.join(models, "fashion-w4a4.halibit")
    acc_pal, acc_w4 = halibit_eval(args.build, pal), halibit_eval(args.build, w4)
    t_pal, t_w4 = paired_latency(args.build, pal, w4, args.repeat)
    rows.append({"paper": "PalQuant", "short": "W2A2 G=2 / W4A4 speed",
                 "claim": "parallel 2-bit groups 1.78x faster than 4-bit (2-bit accelerator)",
                 "figure": f"Fashion-MNIST PalQuant {t_pal:.3f} ms vs W4A4 {t_w4:.3f} ms",
                 "ratio": t_w4 / t_pal, "target": 1.78,
                 "command": "build/apps/halibit bench models/fashion-{palquant-w2a2-g2,w4a4}.halibit"})
    rows.append({"paper": "PalQuant", "short": "accuracy vs W4A4",
                 "claim": "+0.52 points top-1 over 4-bit (ImageNet)",
                 "figure": f"top-1 {acc_pal:.2f}% vs {acc_w4:.2f}% ({acc_pal - acc_w4:+.2f} points)",
                 "ratio": acc_pal - acc_w4, "target": 0.52, "points": True,
                 "command": "build/apps/halibit eval models/fashion-{palquant-w2a2-g2,w4a4}.halibit"})

    r50 = lat[("resnet50", "halibit", "w8a8")] / lat[("resnet50", "halibit", "w4a4")]
    rows.append({"paper": "HAWQ-V3", "short": "ResNet-50 INT4 / INT8",
                 "claim": "INT4 1.45x INT8 (ResNet-50, T4 GPU)",
                 "figure": "ResNet-50 w4a4 vs w8a8 (synthetic weights)", "ratio": r50, "target": 1.45,
                 "command": cmd})
    mixed, w8 = os.path.join(models, "fashion-hawq-mixed.halibit"), os.path.join(models, "fashion-w8a8.halibit")
    acc_mixed, acc_w8 = halibit_eval(args.build, mixed), halibit_eval(args.build, w8)
    t_mixed, t_w8 = paired_latency(args.build, mixed, w8, args.repeat)
    rows.append({"paper": "HAWQ-V3", "short": "mixed / INT8 latency",
                 "claim": "mixed INT4/8 at 0.77x INT8 latency within 1 point",
                 "figure": f"Fashion-MNIST mixed {t_mixed:.3f} ms vs w8a8 {t_w8:.3f} ms; top-1 {acc_mixed:.2f}% vs "
                           f"{acc_w8:.2f}%", "ratio": t_w8 / t_mixed, "target": 1 / 0.77,
                 "command": "build/apps/halibit bench / eval models/fashion-{hawq-mixed,w8a8}.halibit"})

    write(args.out, rows, machine, versions, extra)
    log(f"wrote {os.path.relpath(args.out, ROOT)}.md")
    for r in rows:
        log(f"{r['paper']:10s} {r['short']:24s} {r['ratio']:.2f}, claim {r['target']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
