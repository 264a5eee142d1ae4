#!/usr/bin/python3
"""Whole-network latency of halibit against the int8 and fp32 peers: PyTorch and onnxruntime.

    scripts/setup.sh --peers  # PyTorch, torchvision, matplotlib, node + npm
    /usr/bin/python3 bench/compare_peers.py [--nets resnet18,resnet50] [--threads 1,2] [--batch 1,8]
        [--repeat 50] [--precisions w1a1,w2a2,w4a4,w8a8,mixed] [--skip-onnx] [--out docs/compare_peers]

ImageNet-shaped ResNet-18 and ResNet-50, 224x224, at each batch size (--batch; batch 1 is
reported as latency, larger batches as images per second) and each thread count:
- halibit at each precision: synthetic models from `python -m halibit.synthetic` (cached in
  --cache, regenerated when python/halibit changes), timed by `build/apps/halibit bench --batch B`.
- PyTorch int8: torchvision's quantizable ResNet with random weights, conv-bn-relu fused,
  eager-mode post-training static quantization (QuantStub/DeQuantStub) with the `onednn`
  quantized engine, calibrated on a few random batches.
- onnxruntime int8: that same quantized network (same weights, same calibration) exported by
  torch.onnx.export as a QDQ model (QuantizeLinear/DequantizeLinear, opset 13; `export_onnx`,
  shared with tests/check_qdq_import.py). onnxruntime's graph optimisation fuses the QDQ pairs
  into integer operators (QLinearConv, QLinearAdd, QGemm); the report lists the operators of the
  optimised graph and says so when none of them is an integer one.
- PyTorch fp32: torchvision's ResNet with random weights, eval, inference_mode.
- onnxruntime fp32: the same fp32 networks exported with torch.onnx.export.
- best int8: for each net, batch size and thread count, the faster of PyTorch int8 and
  onnxruntime int8; every row is compared with it.
onnxruntime is npm's onnxruntime-node (installed into --cache/node with
ONNXRUNTIME_NODE_INSTALL=skip: the package ships prebuilt linux-x64 binaries), driven by
bench/compare_peers_ort.js; the ONNX files have a fixed batch size, one file per --batch value.
For each PyTorch variant the faster of eager and TorchScript (trace + freeze) is kept, chosen by a
short pilot run. Each PyTorch/onnxruntime measurement runs in its own process with the thread
count set before the first operator. Latency is the median of --repeat runs (of one batch each)
after warm-up; images per second is the batch size divided by it.

Writes OUT.md (one table per batch size), OUT.png (latency per precision against the best int8
engine) and --cache/results.json; --report-only redraws the tables and plot from results.json
without measuring. Progress goes to stderr. A peer that cannot run is reported under "Issues"
with the reason, and the other measurements go on.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_PRECISIONS = ["w1a1", "w2a2", "w4a4", "w8a8", "mixed"]
ALL_NETS = ["resnet18", "resnet50"]
PEERS = [("pytorch", "int8"), ("onnxruntime", "int8"), ("pytorch", "fp32"), ("onnxruntime", "fp32")]
INT8_PEERS = [p for p in PEERS if p[1] == "int8"]  # the candidates for "best int8"
ENGINE_LABEL = {"halibit": "halibit", "pytorch": "PyTorch", "onnxruntime": "onnxruntime"}
PY = "/usr/bin/python3"


def log(msg: str) -> None:
    print(f"[compare_peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    """A measurement that could not be made; the message goes into the report."""


def run(cmd, *, env=None, cwd=ROOT, timeout=None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True)


def tail(text: str, n: int = 6) -> str:
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    return " | ".join(lines[-n:])


# ---------------------------------------------------------------------------------------------
# Workers: run in a child process (`--worker torch|export`), print one JSON line on stdout.

def _torch_model(net: str, kind: str):
    import torch
    try:
        import torchvision  # noqa: F401
        from torchvision import models
        from torchvision.models import quantization as qmodels
    except ImportError:
        raise SystemExit("torchvision is missing: apt-get install python3-torchvision "
                         "(Debian's build for python3-torch 1.13)")
    torch.manual_seed(0)
    if kind == "fp32":
        return getattr(models, net)(weights=None).eval(), None
    engines = torch.backends.quantized.supported_engines
    engine = next(e for e in ("onednn", "x86", "fbgemm") if e in engines)
    if engine != "onednn":
        log(f"quantized engine 'onednn' not in {engines}; falling back to '{engine}'")
    torch.backends.quantized.engine = engine
    m = getattr(qmodels, net)(weights=None, quantize=False).eval()
    m.fuse_model(is_qat=False)  # conv+bn+relu (and conv+bn) into single modules
    m.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    torch.ao.quantization.prepare(m, inplace=True)
    gen = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for _ in range(4):  # calibration: a few random batches
            m(torch.rand(2, 3, 224, 224, generator=gen))
    torch.ao.quantization.convert(m, inplace=True)
    return m, engine


def _time(fn, x, warmup: int, repeat: int):
    import torch
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn(x)
            ts.append((time.perf_counter() - t0) * 1e3)
    return ts


def worker_torch(args) -> dict:
    import torch
    torch.set_num_threads(args.threads)
    model, engine = _torch_model(args.net, args.kind)
    x = torch.rand(args.batch, 3, 224, 224, generator=torch.Generator().manual_seed(2))

    candidates = {"eager": model}
    with torch.inference_mode():
        traced = torch.jit.freeze(torch.jit.trace(model, x))
        candidates["jit"] = traced
        if args.kind == "fp32":
            candidates["jit+optimize_for_inference"] = torch.jit.optimize_for_inference(
                torch.jit.freeze(torch.jit.trace(model, x)))
    if args.kind == "fp32":
        cl = model.to(memory_format=torch.channels_last)
        xcl = x.contiguous(memory_format=torch.channels_last)
        candidates["eager channels_last"] = (cl, xcl)

    def unpack(c):
        return c if isinstance(c, tuple) else (c, x)

    pilot = {}
    if args.mode in candidates:
        mode = args.mode
    else:
        for name, c in candidates.items():  # short pilot: pick the fastest mode
            fn, inp = unpack(c)
            pilot[name] = statistics.median(_time(fn, inp, warmup=3, repeat=max(5, args.repeat // 5)))
        mode = min(pilot, key=pilot.get)
    fn, inp = unpack(candidates[mode])
    ts = _time(fn, inp, warmup=args.warmup, repeat=args.repeat)
    return {"latency_ms": {"median": statistics.median(ts), "min": min(ts)},
            "mode": mode, "pilot_ms": pilot, "quantized_engine": engine,
            "torch_version": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch}


def onnx_op_counts(path: str) -> dict:
    """{op_type: count} of an ONNX file's graph (domain-qualified unless ai.onnx)."""
    import onnx
    counts: dict = {}
    for n in onnx.load(path).graph.node:
        op = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        counts[op] = counts.get(op, 0) + 1
    return counts


def export_onnx(model, example, path: str, *, qdq: bool = False) -> dict:
    """Exports a PyTorch network with torch.onnx.export (opset 13, input "input", output "logits",
    the batch size of `example`), writing PATH.tmp and renaming it, so PATH is complete or absent.

    qdq: the network is quantized by PyTorch's post-training static quantization (eager or FX);
    its quantized operators export as QuantizeLinear / DequantizeLinear around float operators
    (the QDQ form, which onnxruntime fuses into integer operators and halibit.convert imports).
    A QDQ export without those nodes raises RuntimeError. Returns the graph's operator counts.
    Used by this script's onnxruntime peers and by tests/check_qdq_import.py."""
    import torch
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, example, tmp, opset_version=13, input_names=["input"],
                          output_names=["logits"], do_constant_folding=True)
    counts = onnx_op_counts(tmp)
    if qdq and not (counts.get("QuantizeLinear") and counts.get("DequantizeLinear")):
        os.remove(tmp)
        raise RuntimeError(f"{path}: the exported graph has no QuantizeLinear/DequantizeLinear "
                           f"(operators: {counts})")
    os.replace(tmp, path)
    return counts


def worker_export(args) -> dict:
    import torch
    model, engine = _torch_model(args.net, args.kind)
    x = torch.rand(args.batch, 3, 224, 224)
    ops = export_onnx(model, x, args.output, qdq=args.kind == "int8")
    return {"output": args.output, "ops": ops, "quantized_engine": engine}


# ---------------------------------------------------------------------------------------------
# Engines, driven from the main process.

def child_env(threads: int | None = None, **extra) -> dict:
    env = dict(os.environ)
    if threads is not None:
        for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(threads)
    env.update(extra)
    return env


def run_worker(worker_args: list[str], threads: int | None, timeout: float) -> dict:
    cmd = [PY, os.path.abspath(__file__), "--worker"] + worker_args
    p = run(cmd, env=child_env(threads), timeout=timeout)
    if p.returncode != 0:
        raise Failure(f"{' '.join(worker_args)}: exit {p.returncode}: {tail(p.stderr)}")
    for line in reversed(p.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise Failure(f"{' '.join(worker_args)}: no JSON on stdout: {tail(p.stdout)}")


def halibit_model(cache: str, net: str, precision: str) -> str:
    path = os.path.join(cache, "models", f"{net}-{precision}.halibit")
    sources = glob.glob(os.path.join(ROOT, "python", "halibit", "*.py"))
    newest_source = max(os.path.getmtime(s) for s in sources)
    if os.path.exists(path) and os.path.getmtime(path) >= newest_source:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log(f"generating {os.path.relpath(path, ROOT)} (python -m halibit.synthetic)")
    t0 = time.time()
    env = child_env(1, PYTHONPATH=os.path.join(ROOT, "python"), OPENBLAS_NUM_THREADS="1")
    p = run([PY, "-m", "halibit.synthetic", "--net", net, "--precision", precision,
             "-o", path + ".tmp"], env=env, timeout=3600)
    if p.returncode != 0:
        raise Failure(f"halibit.synthetic {net} {precision}: exit {p.returncode}: {tail(p.stderr or p.stdout)}")
    os.replace(path + ".tmp", path)
    log(f"  done in {time.time() - t0:.0f} s")
    return path


def bench_halibit(binary: str, model: str, threads: int, batch: int, repeat: int, cache: str) -> dict:
    out = os.path.join(cache, "json", f"halibit-{os.path.basename(model)}-t{threads}-b{batch}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    if os.path.exists(out):
        os.remove(out)
    cmd = [binary, "bench", model, "--threads", str(threads), "--batch", str(batch), "--repeat", str(repeat),
           "--json", out]
    p = run(cmd, timeout=1800)
    if p.returncode != 0:
        raise Failure(f"{' '.join(cmd[1:3])} --threads {threads} --batch {batch}: exit {p.returncode}: "
                      f"{tail(p.stderr or p.stdout)}")
    try:
        with open(out) as f:
            data = json.load(f)
        data["latency_ms"]["median"], data["latency_ms"]["min"]  # noqa: B018  (shape check)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Failure(f"halibit bench wrote no usable {out}: {e}")
    return data


def onnx_model(cache: str, net: str, kind: str, batch: int) -> str:
    """The ONNX file of the PyTorch network `kind` (fp32, or int8 as QDQ) for batch size `batch`,
    exported when missing or older than this script (which defines the networks)."""
    path = os.path.join(cache, "onnx", f"{net}-{kind}-b{batch}.onnx")
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(os.path.abspath(__file__)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        log(f"exporting {os.path.relpath(path, ROOT)} (torch.onnx.export{', QDQ' if kind == 'int8' else ''})")
        run_worker(["export", "--net", net, "--kind", kind, "--batch", str(batch), "--output", path],
                   None, timeout=1800)
    return path


# Operators that compute on integers in onnxruntime's optimised graph (ONNX and com.microsoft).
ORT_INTEGER_OPS = ("QLinear", "ConvInteger", "MatMulInteger", "QGemm")


def ort_optimized_ops(modules: str, model: str) -> dict:
    """{op_type: count} of MODEL as onnxruntime runs it after its graph optimisations."""
    out = os.path.splitext(model)[0] + ".ort-optimized.onnx"
    script = os.path.join(ROOT, "bench", "compare_peers_ort.js")
    p = run(["node", script, model, "--save-optimized", out], env=child_env(1, NODE_PATH=modules), timeout=600)
    if p.returncode != 0:
        raise Failure(f"onnxruntime-node --save-optimized: exit {p.returncode}: {tail(p.stderr)}")
    try:
        return onnx_op_counts(out)
    except ImportError:
        raise Failure("python3-onnx is missing (apt-get install python3-onnx): cannot read the optimised graph")


def ort_setup(cache: str) -> str:
    """Returns the node_modules directory holding a working onnxruntime-node; raises Failure why not."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise Failure("node/npm not found (Debian: apt-get install nodejs npm)")
    node_dir = os.path.join(cache, "node")
    modules = os.path.join(node_dir, "node_modules")
    pkg = os.path.join(modules, "onnxruntime-node")
    if not os.path.isdir(pkg):
        os.makedirs(node_dir, exist_ok=True)
        pj = os.path.join(node_dir, "package.json")
        if not os.path.exists(pj):
            with open(pj, "w") as f:
                json.dump({"name": "halibit-compare-peers", "private": True}, f)
        log(f"npm install onnxruntime-node into {os.path.relpath(node_dir, ROOT)}")
        # The postinstall script would download binaries from outside; the package itself ships
        # prebuilt ones for linux x64, which skipping the download keeps.
        p = run(["npm", "install", "--no-audit", "--no-fund", "onnxruntime-node"], cwd=node_dir,
                env=child_env(ONNXRUNTIME_NODE_INSTALL="skip"), timeout=900)
        if p.returncode != 0:
            raise Failure(f"npm install onnxruntime-node failed: {tail(p.stderr)}")
    arch = {"x86_64": "x64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    binding = glob.glob(os.path.join(pkg, "bin", "napi-v*", "linux", arch, "onnxruntime_binding.node"))
    if not binding:
        raise Failure(f"onnxruntime-node has no prebuilt binding for linux/{arch} under {pkg}/bin")
    p = run(["node", "-e", "const o=require('onnxruntime-node');console.log(o.env.versions.node)"],
            env=child_env(NODE_PATH=modules), timeout=120)
    if p.returncode != 0:
        raise Failure(f"onnxruntime-node does not load: {tail(p.stderr)}")
    return modules


def bench_ort(modules: str, model: str, threads: int, batch: int, repeat: int, warmup: int) -> dict:
    script = os.path.join(ROOT, "bench", "compare_peers_ort.js")
    p = run(["node", script, model, str(threads), str(repeat), str(warmup), "--batch", str(batch)],
            env=child_env(threads, NODE_PATH=modules), timeout=3600)
    if p.returncode != 0:
        raise Failure(f"onnxruntime-node: exit {p.returncode}: {tail(p.stderr)}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI), percent."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some"):
                    return float(line.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        pass
    return None


def wait_quiet(max_seconds: float, threshold: float = 5.0) -> None:
    if max_seconds <= 0 or cpu_pressure() is None:
        return
    t0 = time.time()
    announced = False
    while time.time() - t0 < max_seconds:
        p = cpu_pressure()
        if p < threshold:
            return
        if not announced:
            log(f"  waiting up to {max_seconds:.0f} s for a quiet machine (CPU pressure {p:.0f}%)")
            announced = True
        time.sleep(2)
    log(f"  still busy after {max_seconds:.0f} s (CPU pressure {cpu_pressure():.0f}%); measuring anyway")


# ---------------------------------------------------------------------------------------------
# Report.

def machine_info() -> dict:
    cpu = "unknown"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu == "unknown":
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_vpopcntdq", "asimd", "asimddp")
           if f in flags]
    git = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip() or "?"
    if run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip():
        git += " (with uncommitted changes)"
    return {"cpu": cpu, "isa": isa, "cores": os.cpu_count(), "kernel": platform.release(),
            "machine": platform.machine(), "git": git}


def run_key(r):
    """(net, engine, precision, threads, batch) of a run (results.json from before --batch: batch 1)."""
    return (r["net"], r["engine"], r["precision"], r["threads"], r.get("batch", 1))


def fmt_ms(v):
    return "—" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.1f}")


def fmt_ips(v):
    return "—" if v is None else (f"{v:.1f}" if v < 1000 else f"{v:.0f}")


def fmt_x(v):
    return "—" if v is None else f"{v:.2f}x"


def best_runs(results: dict) -> dict:
    """run_key -> the successful run with the lowest median (over rounds)."""
    best = {}
    for r in results["runs"]:
        if r.get("latency_ms"):
            k = run_key(r)
            if k not in best or r["latency_ms"]["median"] < best[k]["latency_ms"]["median"]:
                best[k] = r
    return best


def best_int8(best: dict) -> dict:
    """(net, threads, batch) -> (engine, median latency in ms) of the fastest int8 peer."""
    out = {}
    for (net, engine, prec, t, b), r in best.items():
        if (engine, prec) in INT8_PEERS:
            v = r["latency_ms"]["median"]
            if (net, t, b) not in out or v < out[(net, t, b)][1]:
                out[(net, t, b)] = (engine, v)
    return out


def batch_sizes(results: dict) -> list[int]:
    return results.get("batches", [1])


BUSY = 20.0  # CPU pressure (percent) above which a measurement is marked as taken on a busy machine


def build_table(results: dict, batch: int) -> tuple[list[str], list[list[str]]]:
    """The table of one batch size: milliseconds per run at batch 1, images per second above."""
    threads = results["threads"]
    best = best_runs(results)
    lat = {k: r["latency_ms"]["median"] for k, r in best.items()}
    busy = {k for k, r in best.items() if (r.get("cpu_pressure") or 0) > BUSY}
    ref = best_int8(best)
    unit = "ms" if batch == 1 else "images/s"

    def value(ms):
        return fmt_ms(ms) if batch == 1 else fmt_ips(None if ms is None else batch * 1e3 / ms)

    header = ["net", "engine", "precision"]
    header += [f"{t} thread{'s' if t > 1 else ''} ({unit})" for t in threads]
    header += [f"vs best int8, {t}T" for t in threads]
    base_t = threads[0]
    header += [f"scaling {base_t}T→{t}T" for t in threads[1:]]
    rows = []
    tried = {run_key(r)[:3] + run_key(r)[4:] for r in results["runs"]}  # (net, engine, precision, batch)
    order = [("halibit", p) for p in results["precisions"]] + list(PEERS)
    for net in results["nets"]:
        for engine, prec in order:
            ms = [lat.get((net, engine, prec, t, batch)) for t in threads]
            if any(m is not None for m in ms) or (net, engine, prec, batch) in tried:
                cells = [net, ENGINE_LABEL[engine], prec]
                cells += [value(m) + (" *" if (net, engine, prec, t, batch) in busy else "")
                          for t, m in zip(threads, ms)]
                for t, m in zip(threads, ms):
                    b = ref.get((net, t, batch))
                    cells.append(fmt_x(b[1] / m) if b and m else "—")
                for t, m in zip(threads[1:], ms[1:]):
                    cells.append(fmt_x(ms[0] / m) if ms[0] and m else "—")
                rows.append(cells)
            if (engine, prec) == INT8_PEERS[-1] and any((net, t, batch) in ref for t in threads):
                # The reference row, after the int8 peers: per thread count the faster of them,
                # its engine in brackets.
                cells = [net, "best int8", "int8"]
                for t in threads:
                    b = ref.get((net, t, batch))
                    cells.append(f"{value(b[1])} ({ENGINE_LABEL[b[0]]})"
                                 + (" *" if (net, b[0], "int8", t, batch) in busy else "") if b else "—")
                cells += ["1.00x" if (net, t, batch) in ref else "—" for t in threads]
                cells += ["—" for _ in threads[1:]]
                rows.append(cells)
    return header, rows


def op_summary(counts: dict) -> str:
    """'20 QLinearConv, 8 QLinearAdd, ...' (domains dropped), most frequent first."""
    short: dict = {}
    for op, n in counts.items():
        name = op.rsplit(".", 1)[-1]
        short[name] = short.get(name, 0) + n
    return ", ".join(f"{n} {op}" for op, n in sorted(short.items(), key=lambda kv: (-kv[1], kv[0])))


def integer_ops(counts: dict) -> int:
    return sum(n for op, n in counts.items() if any(k in op.rsplit(".", 1)[-1] for k in ORT_INTEGER_OPS))


FLOAT_COMPUTE_OPS = ("Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul")


def float_compute_ops(counts: dict) -> int:
    return sum(n for op, n in counts.items() if op.rsplit(".", 1)[-1] in FLOAT_COMPUTE_OPS)


def markdown(results: dict) -> str:
    m = results["machine"]
    batches = batch_sizes(results)
    threads = results["threads"]
    out = [
        "# halibit vs peers: whole-network latency (generated)",
        "",
        f"Generated by `{results['command']}` on {results['date']}.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['machine']}, ISA {' '.join(m['isa']) or '?'}, "
        f"Linux {m['kernel']}; load average {results['load_before']} before, {results['load_after']} after. "
        f"halibit {m['git']}.",
        "",
        "224x224x3, ImageNet-shaped ResNet-18 / ResNet-50 with random (synthetic) weights, batch "
        + " and ".join(map(str, batches)) + ". "
        f"Median of {results['repeat']} runs after warm-up, a run being one batch; everything is measured "
        f"{results.get('rounds', 1)} time(s), interleaved, and the fastest round's median is shown. "
        "Batch 1 is shown as latency (milliseconds), larger batches as throughput (images per second: the "
        "batch size divided by the median latency). "
        f"`*`: CPU pressure (PSI some avg10) above {BUSY:.0f}% right after that measurement, i.e. other "
        "processes competed for the cores; treat as an upper bound. "
        "`best int8` is, per net, batch size and thread count, the faster of PyTorch int8 and onnxruntime "
        "int8 (its engine in brackets); `vs best int8` is its latency divided by the row's at the same batch "
        "size and thread count (above 1 means faster); `scaling` is the row's "
        f"{threads[0]}-thread latency divided by its latency at the other thread count.",
    ]
    for batch in batches:
        header, rows = build_table(results, batch)
        what = "latency, milliseconds" if batch == 1 else "throughput, images per second"
        out += ["", f"## Batch {batch} ({what})", "",
                "| " + " | ".join(header) + " |",
                "|" + "|".join("---" if i < 3 else "---:" for i in range(len(header))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    out += ["", "Engines:", ""]
    v = results.get("versions", {})
    isas = sorted({r["isa_resolved"] for r in results["runs"] if r.get("isa_resolved")})
    out.append(f"- halibit: `build/apps/halibit bench MODEL --threads N --batch B --repeat {results['repeat']}` "
               "(default kernel choice) on models from `python -m halibit.synthetic --net NET --precision P`"
               + (f"; ISA used: {', '.join(isas)}." if isas else "."))
    qe = v.get("quantized_engine")
    out.append(f"- PyTorch int8: torch {v.get('torch', '?')}, torchvision quantizable ResNet, fused "
               f"conv-bn-relu, eager-mode post-training static quantization, quantized engine "
               f"`{qe or '?'}`, calibrated on 4 random batches of 2; `torch.set_num_threads(N)`.")
    ort = (f"onnxruntime-node {v.get('onnxruntime', '?')} (CPU provider, graph optimization level all, "
           "intraOpNumThreads N, interOpNumThreads 1)")
    graphs = results.get("ort_int8_ops", {})
    out.append(f"- onnxruntime int8: {ort} on the PyTorch int8 network above (same weights and calibration) "
               "exported by `torch.onnx.export` (opset 13) as a QDQ model: QuantizeLinear / DequantizeLinear "
               "around float operators, per-channel weights. "
               + ("The graph onnxruntime runs after its optimisations: " + "; ".join(
                   f"{net}: {op_summary(c)} ({float_compute_ops(c)} float Conv/Gemm/MatMul)"
                   for net, c in graphs.items()) + "." if graphs else ""))
    out.append("- PyTorch fp32: torchvision ResNet, eval, `inference_mode`.")
    out.append(f"- onnxruntime fp32: {ort} on the fp32 model exported with `torch.onnx.export` (opset 13).")
    out.append("- The ONNX files and TorchScript traces have a fixed batch size: one per batch size.")
    modes: dict = {}  # (net, precision) -> ["batch B NT: mode", ...]
    for (n, _, p, t, b), r in sorted(best_runs(results).items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][4], kv[0][3])):
        if r.get("mode"):
            modes.setdefault((n, p), []).append(f"batch {b} {t}T {r['mode']}")
    if modes:
        out.append("- PyTorch execution mode kept per run (fastest in a short pilot): " + "; ".join(
            f"{n} {p}: {', '.join(m)}" for (n, p), m in modes.items()) + ".")
    ok = set(best_runs(results))
    errors = [r for r in results["runs"] if r.get("error") and run_key(r) not in ok]
    notes = results.get("notes", [])
    if errors or notes:
        out += ["", "Issues:", ""]
        out += [f"- {n}" for n in notes]
        seen = set()
        for r in errors:
            msg = (f"{r['net']} {ENGINE_LABEL[r['engine']]} {r['precision']} batch {r.get('batch', 1)} "
                   f"{r['threads']}T: {r['error']}")
            if r["error"] not in seen:
                out.append(f"- {msg}")
                seen.add(r["error"])
    if results.get("plot"):
        out += ["", f"![latency per precision against the best int8 engine]({os.path.basename(results['plot'])})"]
    return "\n".join(out) + "\n"


def plot(results: dict, path: str) -> bool:
    """One panel per net and batch size: halibit's time per image at each precision and the best
    int8 engine's, bars per thread count, the best int8 time as a dashed line across the panel."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing (apt-get install python3-matplotlib): no plot")
        return False
    threads = results["threads"]
    nets = results["nets"]
    batches = batch_sizes(results)
    precisions = results["precisions"]
    best = best_runs(results)
    lat = {k: r["latency_ms"]["median"] for k, r in best.items()}
    ref = best_int8(best)
    fig, axes = plt.subplots(len(batches), len(nets), figsize=(6.0 * len(nets), 4.4 * len(batches)),
                             squeeze=False)
    width = 0.8 / len(threads)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for row, batch in zip(axes, batches):
        for ax, net in zip(row, nets):
            engines = [f"{t}T {ENGINE_LABEL[ref[(net, t, batch)][0]]}" for t in threads if (net, t, batch) in ref]
            labels = [f"halibit\n{p}" for p in precisions] + ["best int8\n" + "\n".join(engines)]
            for i, t in enumerate(threads):
                color = colors[i % len(colors)]
                xs, ys = [], []
                for j, p in enumerate(precisions):
                    v = lat.get((net, "halibit", p, t, batch))
                    if v is not None:
                        xs.append(j + (i - (len(threads) - 1) / 2) * width)
                        ys.append(v / batch)
                b = ref.get((net, t, batch))
                if b:
                    xs.append(len(precisions) + (i - (len(threads) - 1) / 2) * width)
                    ys.append(b[1] / batch)
                    ax.axhline(b[1] / batch, color=color, linestyle="--", linewidth=0.8, alpha=0.7)
                bars = ax.bar(xs, ys, width, label=f"{t} thread{'s' if t > 1 else ''}", color=color)
                if b:
                    bars[-1].set_hatch("//")
                    bars[-1].set_edgecolor("white")
                for bar, y in zip(bars, ys):
                    ax.annotate(f"{y:.1f}" if y >= 10 else f"{y:.2f}",
                                (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom",
                                fontsize=6, xytext=(0, 1), textcoords="offset points")
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, fontsize=7.5)
            ax.set_ylabel("latency, ms" if batch == 1 else f"ms per image (batch latency / {batch})")
            ax.set_title(f"{net}, 224x224, batch {batch}", fontsize=10)
            ax.margins(y=0.12)
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("halibit against the best int8 engine (faster of PyTorch and onnxruntime; dashed) — "
                 f"{results['machine']['cpu']}, {results['date'][:10]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True


def write_report(results: dict, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    png = out + ".png"
    results["plot"] = png if plot(results, png) else None
    text = markdown(results)
    with open(out + ".md", "w") as f:
        f.write(text)
    for batch in batch_sizes(results):
        header, rows = build_table(results, batch)
        print(f"batch {batch}" + (" (latency, ms)" if batch == 1 else " (images/s)"))
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in rows:
            print("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    for line in text.split("Issues:", 1)[1:]:
        print("Issues:" + line.split("![")[0].rstrip())
    log(f"wrote {os.path.relpath(out + '.md', ROOT)}" + (f" and {os.path.relpath(png, ROOT)}" if results["plot"] else ""))


# ---------------------------------------------------------------------------------------------

def csv_list(s: str, allowed=None, conv=str):
    try:
        vals = [conv(v.strip()) for v in s.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    if conv is int and (not vals or any(v < 1 for v in vals)):
        raise argparse.ArgumentTypeError(f"{s!r}: one or more numbers, each 1 or more")
    if allowed is not None:
        bad = [v for v in vals if v not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {','.join(map(str, allowed))}")
    return vals


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--nets", type=lambda s: csv_list(s, ALL_NETS), default=ALL_NETS,
                   help="comma-separated, from resnet18,resnet50 (default both)")
    p.add_argument("--threads", type=lambda s: csv_list(s, conv=int), default=[1, 2],
                   help="comma-separated thread counts (default 1,2); scaling is relative to the first")
    p.add_argument("--batch", type=lambda s: csv_list(s, conv=int), default=[1, 8],
                   help="comma-separated batch sizes (default 1,8): batch 1 is reported as latency, "
                        "larger ones as images per second")
    p.add_argument("--repeat", type=int, default=50, help="timed runs per measurement (median kept)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (PyTorch, onnxruntime)")
    p.add_argument("--precisions", type=lambda s: csv_list(s, ALL_PRECISIONS), default=ALL_PRECISIONS,
                   help="halibit precisions, comma-separated (default w1a1,w2a2,w4a4,w8a8,mixed)")
    p.add_argument("--rounds", type=int, default=3,
                   help="measure everything this many times, interleaved; the fastest round's median is kept")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each measurement wait up to SECONDS for CPU pressure (PSI avg10) below 5%%")
    p.add_argument("--skip-onnx", action="store_true", help="no onnxruntime (int8 and fp32)")
    p.add_argument("--skip-halibit", action="store_true", help="peers only (no halibit binary needed)")
    p.add_argument("--skip-torch", action="store_true", help="no PyTorch int8/fp32")
    p.add_argument("--out", default=os.path.join("docs", "compare_peers"),
                   help="writes OUT.md and OUT.png (default docs/compare_peers)")
    p.add_argument("--cache", default=os.path.join("build", "compare"),
                   help="models, ONNX files, node_modules, results.json (default build/compare)")
    p.add_argument("--halibit", default=os.path.join("build", "apps", "halibit"), help="the halibit CLI")
    p.add_argument("--report-only", action="store_true", help="redraw OUT.md/png from CACHE/results.json")
    # Internal: child processes.
    p.add_argument("--worker", choices=["torch", "export"], help=argparse.SUPPRESS)
    p.add_argument("--net", help=argparse.SUPPRESS)
    p.add_argument("--kind", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        args.batch = args.batch[0]
        if args.worker == "torch":
            args.threads = args.threads[0]
            print(json.dumps(worker_torch(args)))
        else:
            print(json.dumps(worker_export(args)))
        return 0

    cache = os.path.abspath(os.path.join(ROOT, args.cache) if not os.path.isabs(args.cache) else args.cache)
    out = args.out if os.path.isabs(args.out) else os.path.join(ROOT, args.out)
    results_path = os.path.join(cache, "results.json")
    if args.report_only:
        with open(results_path) as f:
            results = json.load(f)
        write_report(results, out)
        return 0

    binary = args.halibit if os.path.isabs(args.halibit) else os.path.join(ROOT, args.halibit)
    if not args.skip_halibit and args.precisions and not os.access(binary, os.X_OK):
        print(f"compare_peers: the halibit CLI {os.path.relpath(binary, ROOT)} is missing: build it with "
              "scripts/build.sh (or pass --halibit PATH, or --skip-halibit for the peers only)",
              file=sys.stderr)
        return 2
    if not args.skip_torch:
        try:
            import torch  # noqa: F401
            import torchvision  # noqa: F401
        except ImportError as e:
            print(f"compare_peers: {e}: run with /usr/bin/python3 (Debian's python3-torch) and "
                  "apt-get install python3-torchvision", file=sys.stderr)
            return 2

    results = {
        "command": " ".join(shlex.quote(a) for a in [PY, os.path.relpath(os.path.abspath(__file__), ROOT)]
                            + list(sys.argv[1:] if argv is None else argv)),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(), "nets": args.nets, "threads": args.threads, "batches": args.batch,
        "precisions": [] if args.skip_halibit else args.precisions, "repeat": args.repeat,
        "rounds": args.rounds,
        "load_before": " ".join(f"{x:.1f}" for x in os.getloadavg()), "runs": [], "notes": [],
        "versions": {}, "ort_int8_ops": {},
    }
    try:
        import torch
        results["versions"]["torch"] = torch.__version__
        engines = torch.backends.quantized.supported_engines
        if "onednn" not in engines:
            results["notes"].append(f"torch {torch.__version__} has no 'onednn' quantized engine "
                                    f"(has {engines}); PyTorch int8 used the fallback")
    except ImportError:
        pass

    # Preparation (not timed): halibit models, ONNX files, onnxruntime-node.
    models = {}
    if not args.skip_halibit:
        for net in args.nets:
            for prec in args.precisions:
                try:
                    models[(net, prec)] = halibit_model(cache, net, prec)
                except Failure as e:
                    models[(net, prec)] = e
    ort_modules, onnx_files = None, {}
    if not args.skip_onnx:
        try:
            ort_modules = ort_setup(cache)
            v = run(["node", "-e", "console.log(require('onnxruntime-node').env.versions.node)"],
                    env=child_env(NODE_PATH=ort_modules)).stdout.strip()
            results["versions"]["onnxruntime"] = v
        except (Failure, subprocess.TimeoutExpired) as e:
            results["notes"].append(f"onnxruntime skipped: {e}")
            log(f"onnxruntime skipped: {e}")
            ort_modules = None
    if ort_modules:
        # One file per net, precision and batch size; a failed export fails only its own runs.
        for net in args.nets:
            for kind in ("int8", "fp32"):
                for b in args.batch:
                    try:
                        onnx_files[(net, kind, b)] = onnx_model(cache, net, kind, b)
                    except (Failure, subprocess.TimeoutExpired) as e:
                        onnx_files[(net, kind, b)] = Failure(f"export to ONNX: {e}")
            # What onnxruntime makes of the QDQ model: integer operators, or float ones between
            # QuantizeLinear/DequantizeLinear (then its "int8" would not be int8 arithmetic).
            int8 = next((onnx_files[(net, "int8", b)] for b in args.batch
                         if not isinstance(onnx_files[(net, "int8", b)], Exception)), None)
            if int8 is None:
                continue
            try:
                ops = ort_optimized_ops(ort_modules, int8)
                results["ort_int8_ops"][net] = ops
                log(f"onnxruntime int8 {net} after graph optimisation: {op_summary(ops)}")
                if not integer_ops(ops):
                    results["notes"].append(
                        f"onnxruntime int8 {net}: the optimised graph has no integer operator "
                        f"({op_summary(ops)}): onnxruntime runs the QDQ model in float")
                elif float_compute_ops(ops):
                    results["notes"].append(
                        f"onnxruntime int8 {net}: {float_compute_ops(ops)} Conv/Gemm/MatMul still run in float "
                        f"after graph optimisation ({op_summary(ops)})")
            except (Failure, subprocess.TimeoutExpired, OSError) as e:
                results["notes"].append(f"onnxruntime int8 {net}: could not inspect the optimised graph: {e}")

    def record(rnd, net, engine, prec, threads, batch, fn):
        label = f"{net} {ENGINE_LABEL[engine]} {prec} batch {batch} {threads}T"
        log(f"timing {label}" + (f" (round {rnd + 1}/{args.rounds})" if args.rounds > 1 else ""))
        wait_quiet(args.wait_quiet)
        entry = {"net": net, "engine": engine, "precision": prec, "threads": threads, "batch": batch,
                 "round": rnd}
        try:
            data = fn()
            entry["cpu_pressure"] = cpu_pressure()
            entry["latency_ms"] = {k: float(data["latency_ms"][k]) for k in ("median", "min")}
            for k in ("mode", "quantized_engine", "isa_resolved", "kernels"):
                if data.get(k):
                    entry[k] = data[k]
            if data.get("quantized_engine"):
                results["versions"]["quantized_engine"] = data["quantized_engine"]
            extra = ([f"{batch * 1e3 / entry['latency_ms']['median']:.1f} images/s"] if batch > 1 else []) \
                + ([entry["mode"]] if entry.get("mode") else [])
            log(f"  {label}: median {entry['latency_ms']['median']:.2f} ms, min {entry['latency_ms']['min']:.2f} ms"
                + (f" ({', '.join(extra)})" if extra else "")
                + (f", CPU pressure {entry['cpu_pressure']:.0f}%" if entry["cpu_pressure"] is not None else ""))
        except (Failure, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as e:
            entry["error"] = str(e)
            log(f"  {label}: FAILED: {e}")
        results["runs"].append(entry)

    def torch_run(net, kind, t, b):
        # The first successful round picks the execution mode by a pilot; later rounds reuse it.
        mode = next((r["mode"] for r in results["runs"] if r.get("mode") and
                     run_key(r) == (net, "pytorch", kind, t, b)), None)
        return run_worker(["torch", "--net", net, "--kind", kind, "--threads", str(t), "--batch", str(b),
                           "--repeat", str(args.repeat), "--warmup", str(args.warmup)]
                          + (["--mode", mode] if mode else []), t, timeout=3600)

    def ort_run(net, kind, t, b):
        model = onnx_files[(net, kind, b)]
        if isinstance(model, Exception):
            raise model
        return bench_ort(ort_modules, model, t, b, args.repeat, args.warmup)

    t_start = time.time()
    for rnd in range(args.rounds):
        for net in args.nets:
            for b in args.batch:
                for t in args.threads:
                    if not args.skip_halibit:
                        for prec in args.precisions:
                            m = models[(net, prec)]

                            def f(m=m, t=t, b=b):
                                if isinstance(m, Exception):
                                    raise m
                                return bench_halibit(binary, m, t, b, args.repeat, cache)
                            record(rnd, net, "halibit", prec, t, b, f)
                    for engine, kind in PEERS:
                        if engine == "pytorch" and not args.skip_torch:
                            record(rnd, net, engine, kind, t, b, lambda kind=kind, t=t, b=b: torch_run(net, kind, t, b))
                        elif engine == "onnxruntime" and ort_modules:
                            record(rnd, net, engine, kind, t, b, lambda kind=kind, t=t, b=b: ort_run(net, kind, t, b))
    results["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    log(f"measured in {time.time() - t_start:.0f} s")

    os.makedirs(cache, exist_ok=True)
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
    write_report(results, out)
    measured = set(best_runs(results))
    return 0 if all(run_key(r) in measured for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
