#!/usr/bin/python3
"""Runs halibit-bench-kernels on this machine and writes docs/RESULTS.md: the current run only.

Two settings, each one run of interleaved repetitions (the fastest repetition of each benchmark
counts: interference only ever adds time), single thread:
  avx2    halibit's AVX2 engines against oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2; on an
          AVX2-only CPU that is oneDNN's native path);
  avx512  halibit's AVX-512 engines against oneDNN's native path (AVX-512 CPUs only).
Ratios are time(onednn_u8s8) / time(engine) within one run; the geometric mean is over the four
3x3 layers.

    /usr/bin/python3 bench/results.py [--build build] [--out docs/RESULTS.md]
"""
import argparse
import datetime
import json
import math
import os
import re
import subprocess
import sys
import tempfile

LAYERS = ["56x56x64", "28x28x128", "14x14x256", "7x7x512", "28x28x128to512", "224x224x3to64k7s2"]
GEOMEAN_LAYERS = LAYERS[:4]
PEERS = ["onednn_u8s8", "xnnpack_qs8"]
HALIBIT = ["bconv_w1a1", "bitserial_w1a2", "bitserial_w2a2", "bitserial_w4a4", "codebook_w2a2", "u8_w8a8", "u8_w4a4",
           "lut_w2a2", "lut_pairwise_w2a2"]


def cpu() -> tuple[str, bool]:
    model, family, flags = "unknown CPU", "?", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and model == "unknown CPU":
                model = value
            elif key == "cpu family" and family == "?":
                family = value
            elif key == "flags" and not flags:
                flags = value
    avx512 = "avx512_vnni" in flags.split() and "avx512_vpopcntdq" in flags.split()
    isa = "AVX-512 VNNI/VPOPCNTDQ" if avx512 else "AVX2, no AVX-512"
    if "amx_int8" in flags.split():
        isa += ", AMX-INT8"
    return f"{model} (cpu family {family}, {os.cpu_count()} cores, {isa})", avx512


def bench(binary: str, engines: list[str], env: dict, repetitions: int, min_time: float) -> tuple[dict, list[str]]:
    """Fastest real time per (engine, layer) in seconds, and the implementations oneDNN ran."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        cmd = [binary, f"--benchmark_filter=^conv/({'|'.join(map(re.escape, engines))})/.*threads:1$",
               f"--benchmark_min_time={min_time}", f"--benchmark_repetitions={repetitions}",
               "--benchmark_enable_random_interleaving=true", "--benchmark_format=json", f"--benchmark_out={out}"]
        print("results: " + " ".join(f"{k}={v}" for k, v in env.items()) + " " + " ".join(cmd[1:]), file=sys.stderr,
              flush=True)
        r = subprocess.run(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"halibit-bench-kernels failed:\n{r.stderr[-2000:]}")
        times: dict = {}
        onednn: list[str] = []
        for b in json.load(open(out))["benchmarks"]:
            if b.get("run_type") != "iteration" or b.get("error_occurred") or b.get("skipped"):
                continue
            _, engine, layer, _ = b["run_name"].split("/")
            if engine == "onednn_u8s8" and b.get("label") and b["label"] not in onednn:
                onednn.append(b["label"])
            t = b["real_time"] * {"us": 1e-6, "ms": 1e-3, "ns": 1e-9}[b["time_unit"]]
            key = (engine, layer)
            times[key] = min(t, times.get(key, t))
        return times, onednn


def ratio_table(times: dict, engines: list[str], suffix: str = "") -> list[str]:
    rows = ["| engine | " + " | ".join(LAYERS) + " | geomean 3x3 |", "|---" * (len(LAYERS) + 2) + "|"]
    for e in engines:
        cells, logs = [], []
        for layer in LAYERS:
            base, t = times.get(("onednn_u8s8", layer)), times.get((e, layer))
            if base is None or t is None:
                cells.append("-")
                continue
            cells.append(f"{base / t:.2f}")
            if layer in GEOMEAN_LAYERS:
                logs.append(math.log(base / t))
        geo = f"{math.exp(sum(logs) / len(logs)):.2f}" if len(logs) == len(GEOMEAN_LAYERS) else "-"
        if all(c == "-" for c in cells):
            continue
        rows.append(f"| `{e}`{suffix} | " + " | ".join(cells) + f" | {geo} |")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench/results.py", description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build")
    p.add_argument("--out", default="docs/RESULTS.md")
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.2)
    args = p.parse_args(argv)
    binary = os.path.join(args.build, "bench", "halibit-bench-kernels")
    if not os.path.exists(binary):
        print(f"results: no {binary} (run scripts/build.sh first)", file=sys.stderr)
        return 1
    cpu_name, has_avx512 = cpu()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            f":(exclude){args.out}"], capture_output=True, text=True).stdout.strip()
    settings = [("avx2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "oneDNN limited to AVX2")]
    if has_avx512:
        settings.append(("avx512", {}, "oneDNN native"))
    lines = [
        "# Results",
        "",
        "Generated by `bench/results.py` (do not edit: run it again). The current run only; earlier",
        "runs are in git history.",
        "",
        f"- When: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, halibit {commit}"
        + (" with uncommitted changes" if dirty else ""),
        f"- Machine: {cpu_name}",
        f"- Each table: one run of `halibit-bench-kernels`, single thread, {args.repetitions} interleaved"
        f" repetitions, the fastest of each; time(onednn_u8s8) / time(engine), higher is faster; batch 1,"
        " ResNet-18 layer shapes (3x3 stride 1 padding 1, 1x1 28x28x128 -> 512, and the 7x7 stride-2 stem"
        " 224x224x3 -> 64, which only the 8-bit engines run).",
        "- halibit's times include packing the input into bit planes and the fused output stage (requantized"
        " codes, like oneDNN's u8 output).",
        "- Whole networks against PyTorch and onnxruntime: `bench/compare_peers.py` (docs/compare_peers.md).",
        "",
    ]
    for isa, env, what in settings:
        engines = PEERS + [f"{e}_{isa}" for e in HALIBIT]
        times, onednn = bench(binary, engines, env, args.repetitions, args.min_time)
        env_text = " ".join(f"{k}={v}" for k, v in env.items())
        lines += [f"## {isa}: halibit's `_{isa}` engines, {what}", "",
                  f"`{env_text + ' ' if env_text else ''}{binary} --benchmark_filter='^conv/(...)/.*threads:1$'"
                  f" --benchmark_repetitions={args.repetitions} --benchmark_enable_random_interleaving=true`", "",
                  "oneDNN ran " + (", ".join(f"`{x}`" for x in onednn) or "(no implementation reported)") + ".", ""]
        lines += ratio_table(times, engines)
        lines.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print(f"results: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
