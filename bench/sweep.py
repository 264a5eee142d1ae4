#!/usr/bin/python3
"""Schedule experiments: compile generator variants, check them bit-exact, time them, rank them.

    bench/sweep.py --family bitserial_conv --isa avx2 --param tile_vectors=1,2 --param tile_pixels=4,7
    bench/sweep.py --family lut_conv --algorithm activation_table --bits 2,2 --isa avx2 --param tile_pixels=1,2,3
    bench/sweep.py --family table_conv --bits 2,2 --isa avx2 --param tile_pixels=2,3 --param step_unroll=4,8,16

Each combination of --param values is compiled straight from the host build's generator
executable (build/generators/halibit_<family>_generator, output_kind=codes, one target: --isa's
from cmake/targets.cmake) into a shared object. Then, with HALIBIT_KERNEL_OVERRIDE naming it
(bench/kernel_override.h), the family's kernel test suite runs on it (bit-exact against the
reference over the shape sweep) and halibit-bench-kernels times it on the ResNet-18 layers,
single thread. Rows: the shipped kernel (`shipped`), every variant, and for bitserial_conv the
same algorithm under Halide's Li2018 autoscheduler (`Li2018`, in place of the shipped
autoscheduler baseline: its tiles assume the generator's estimates, so its bit-exact check is the
one on the estimated shape; likewise for lut_conv's activation tables, replacing the family's
library), sorted by the geometric mean time over the 3x3 layers. Variants and
their .stmt/.s files stay in --work (default build/sweep/) for reading.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("56x56x64", "28x28x128", "14x14x256", "7x7x512", "28x28x128to512")
LAYERS_3X3 = LAYERS[:4]
AUTOSCHEDULER = "/usr/lib/x86_64-linux-gnu/halide14/libautoschedule_li2018.so"

KERNEL_LIST = os.path.join(ROOT, "generators", "kernels.inc")


@dataclasses.dataclass
class Kernel:
    """A line of the kernel list (generators/kernels.inc)."""
    library: str
    generator: str
    targets: str
    params: dict
    test_binary: str
    test_filter: str
    engines: dict  # (w, a) -> halibit-bench-kernels engine name, without the isa suffix


def kernel_list(path: str = KERNEL_LIST) -> list[Kernel]:
    kernels = []
    for n, line in enumerate(open(path), 1):
        if not line.startswith("HALIBIT_KERNEL("):
            continue
        m = re.fullmatch(r'HALIBIT_KERNEL\((\w+), (\w+), (\w+), "([^"]*)", "([^"]*)", "([^"]*)"\)', line.strip())
        if not m:
            raise SystemExit(f"{path}:{n}: cannot read {line.strip()!r}")
        library, generator, targets, params, tests, bench = m.groups()
        binary, _, test_filter = tests.partition(" ")
        engines = {}
        for group in filter(None, (g.strip() for g in bench.split(";"))):
            engine, *pairs = group.split()
            for pair in pairs:
                w, a = (int(v) for v in re.fullmatch(r"w(\d)a(\d)", pair).groups())
                engines[(w, a)] = f"{engine}_w{w}a{a}"
        kernels.append(Kernel(library, generator, targets, dict(p.split("=", 1) for p in params.split()), binary,
                              test_filter, engines))
    return kernels


FAMILIES = sorted({k.generator for k in kernel_list() if any(k.engines.values())})


def family_kernel(args, autoscheduled: bool = False) -> Kernel:
    """The family's codes library that halibit-bench-kernels times at --bits (and --algorithm), or with
    `autoscheduled` its Li2018 library."""
    candidates = [k for k in kernel_list() if k.generator == args.family and k.params.get("output_kind") == "codes"
                  and (k.targets == "li2018") == autoscheduled and args.bits in k.engines]
    if len(candidates) > 1:
        candidates = [k for k in candidates if k.params.get("algorithm", args.algorithm) == args.algorithm]
    if len(candidates) > 1:  # table_conv at 2,2: the W2 library, not the codebook engine's three planes
        candidates = [k for k in candidates if k.params.get("weight_bits", str(args.bits[0])) == str(args.bits[0])]
    if len(candidates) != 1:
        timed = sorted({f"{w},{a}" for k in kernel_list() if k.generator == args.family for w, a in k.engines})
        raise SystemExit(f"bench/sweep.py: halibit-bench-kernels times no {args.family} library at --bits "
                         f"{args.bits[0]},{args.bits[1]}" + (f" (it times {' '.join(timed)})" if timed else "")
                         + ": see the bench field of generators/kernels.inc")
    return candidates[0]


def family_row(args):
    """(library, test binary, gtest filter, engine) of the family at --bits, from the kernel list."""
    k = family_kernel(args)
    return k.library, k.test_binary, k.test_filter, k.engines[args.bits]


def targets() -> dict[str, str]:
    """isa -> Halide target string, from cmake/targets.cmake (one source of truth)."""
    text = open(os.path.join(ROOT, "cmake", "targets.cmake")).read()
    found = dict(re.findall(r'set\(HALIBIT_TARGET_(\w+) "([^"]+)"\)', text))
    return {"avx512": found["AVX512"], "avx2": found["AVX2"], "scalar": found["SCALAR"]}


def run(cmd, env=None, **kw):
    return subprocess.run(cmd, env={**os.environ, **(env or {})}, text=True, capture_output=True, **kw)


def compile_variant(args, name: str, params: dict, autoschedule: bool) -> str:
    """Runs the generator for one variant; returns the shared object's path."""
    gen = os.path.join(args.build, "generators", f"halibit_{args.family}_generator")
    out = os.path.join(args.work, name)
    os.makedirs(out, exist_ok=True)
    cmd = [gen, "-g", args.family, "-f", name, "-e", "object,stmt,assembly,c_header", "-o", out,
           f"target={targets()[args.isa]}{''.join('-' + f for f in args.features)}-no_runtime"]
    cmd += [f"{k}={v}" for k, v in family_kernel(args).params.items()]  # the replaced library's (kernel list)
    if autoschedule:
        cmd[1:1] = ["-p", AUTOSCHEDULER, "-s", "Li2018"]
        cmd.append("auto_schedule=true")
    cmd += [f"{k}={v}" for k, v in params.items()]
    r = run(cmd)
    if r.returncode != 0:
        raise RuntimeError(f"{name}: the generator failed:\n{r.stderr.strip()[-2000:]}")
    so = os.path.join(out, name + ".so")
    r = run(["g++", "-shared", "-o", so, os.path.join(out, name + ".o")])
    if r.returncode != 0:
        raise RuntimeError(f"{name}: linking {so} failed:\n{r.stderr.strip()[-2000:]}")
    return so


def auto_row(args, auto: bool):
    """(library, test binary, gtest filter, engine) a row replaces: bitserial_conv's autoscheduled
    row has its own library (the list's li2018 line); lut_conv's replaces the family's and is
    checked on the suite of the autoscheduled shape."""
    if auto and args.family == "bitserial_conv":
        k = family_kernel(args, autoscheduled=True)
        return k.library, k.test_binary, k.test_filter, k.engines[args.bits] + "_auto"
    lib, binary, test_filter, engine = family_row(args)
    if auto:
        test_filter = "LutConvAutoscheduled.*"  # its tiles assume the estimated shape
    return lib, binary, test_filter, engine


def override_env(args, so: str | None, name: str, auto: bool) -> dict[str, str]:
    lib = auto_row(args, auto)[0]
    return {"HALIBIT_KERNEL_OVERRIDE": f"{lib}={so}:{name}"} if so else {}


def bit_exact(args, so: str | None, name: str, auto: bool) -> tuple[bool, str]:
    _, binary, test_filter, _ = auto_row(args, auto)
    r = run([os.path.join(args.build, "tests", binary), f"--gtest_filter={test_filter}", "--gtest_brief=1"],
            env={**override_env(args, so, name, auto), "HALIBIT_ISA": args.isa})
    lines = (r.stdout + r.stderr).splitlines()
    summary = [l for l in lines if "PASSED" in l or "FAILED" in l or "rror" in l]
    return r.returncode == 0, (summary[-1].strip() if summary else f"exit status {r.returncode}")


def benchmark(args, rows) -> dict[str, dict[str, float]]:
    """label -> layer -> fastest time in seconds, every row timed interleaved in one run."""
    base = family_row(args)[3] + "_" + args.isa
    variants_file = os.path.join(args.work, "variants.txt")
    engines = [base]
    with open(variants_file, "w") as f:
        for label, so, name, auto in rows:
            if so is None:
                continue
            library, _, _, engine = auto_row(args, auto)
            if not engine.endswith("_auto"):  # the Li2018 library's engine names no isa
                engine += "_" + args.isa
            f.write(f"{label} {engine} {library} {so} {name}\n")
            engines.append(re.escape(f"{engine}@{label}"))
    out = os.path.join(args.work, "bench.json")
    r = run([os.path.join(args.build, "bench", "halibit-bench-kernels"),
             f"--benchmark_filter=^conv/({'|'.join(engines)})/.*threads:1$", f"--benchmark_min_time={args.min_time}",
             f"--benchmark_repetitions={args.repetitions}", "--benchmark_enable_random_interleaving=true",
             "--benchmark_report_aggregates_only=true", "--benchmark_format=json", f"--benchmark_out={out}"],
            env={"HALIBIT_KERNEL_VARIANTS": variants_file})
    if r.returncode != 0:
        raise RuntimeError(f"halibit-bench-kernels failed:\n{r.stderr.strip()[-2000:]}")
    times: dict[str, dict[str, float]] = {}
    for b in json.load(open(out))["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "min":
            continue  # with one repetition there are no aggregates, only the run
        _, engine, layer, _ = b["run_name"].split("/")
        label = engine.split("@", 1)[1] if "@" in engine else "shipped"
        t = b["real_time"] * {"us": 1e-6, "ms": 1e-3, "ns": 1e-9}[b["time_unit"]]
        row = times.setdefault(label, {})
        row[layer] = min(t, row.get(layer, t))
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench/sweep.py", description=__doc__.splitlines()[0])
    p.add_argument("--family", required=True, choices=FAMILIES)
    p.add_argument("--isa", default="avx2", choices=("avx512", "avx2", "scalar"))
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2",
                   help="a generator parameter and the values to try (repeatable; the sweep is their product)")
    p.add_argument("--bits", default=None, help="W,A of the benchmarked engine, one that the kernel list's bench field "
                   "gives the family (default 2,2, else the family's first)")
    p.add_argument("--algorithm", default="activation_table", choices=("activation_table", "pairwise"),
                   help="lut_conv's algorithm (default %(default)s)")
    p.add_argument("--no-autoschedule", action="store_true",
                   help="leave out the Li2018 row (bitserial_conv W2A2, lut_conv activation_table)")
    p.add_argument("--feature", dest="features", action="append", default=[], metavar="FEATURE",
                   help="a Halide target feature added to every variant's target (e.g. large_buffers); repeatable")
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--work", default=None, help="where variants go (default BUILD/sweep)")
    p.add_argument("--min-time", default="0.03", help="--benchmark_min_time per repetition (default %(default)s)")
    p.add_argument("--repetitions", type=int, default=5, help="fastest of this many, interleaved (default %(default)s)")
    args = p.parse_args(argv)
    if args.bits:
        args.bits = tuple(int(b) for b in args.bits.split(","))
    else:  # 2,2 where the family is timed there, else the first pair its libraries are timed at
        timed = [bits for k in kernel_list() if k.generator == args.family and k.targets != "li2018" for bits in k.engines]
        args.bits = (2, 2) if (2, 2) in timed or not timed else timed[0]
    args.work = args.work or os.path.join(args.build, "sweep")
    family_row(args)  # --bits names a timed library, or a message naming those that are
    if args.family == "table_conv" and args.isa == "scalar":
        p.error("--isa: the runtime runs table kernels on avx2 and avx512 only")
    flags = {"avx512": "avx512f", "avx2": "avx2"}
    if args.isa in flags and flags[args.isa] not in open("/proc/cpuinfo").read().split():
        print(f"sweep: this CPU has no {args.isa}", file=sys.stderr)
        return 77  # ctest's skip code
    grid = []
    for spec in args.param:
        key, _, values = spec.partition("=")
        if not key or not values:
            p.error(f"--param {spec!r}: expected NAME=V1,V2,...")
        grid.append([(key, v) for v in values.split(",")])
    plan = [("shipped", None, False)]
    for combo in itertools.product(*grid) if grid else ():
        plan.append((",".join(f"{k}={v}" for k, v in combo), dict(combo), False))
    has_auto_library = any(k.generator == args.family and k.targets == "li2018" and args.bits in k.engines
                           for k in kernel_list())
    autoschedulable = has_auto_library or (args.family == "lut_conv" and args.algorithm == "activation_table")
    if not args.no_autoschedule and autoschedulable and args.isa != "scalar":
        plan.append(("Li2018", {}, True))

    rows, checked = [], {}  # rows: (label, so, function name, autoscheduled) of the bit-exact ones
    for i, (label, params, auto) in enumerate(plan):
        name = f"sweep_{args.family}_{args.isa}_{i}"
        print(f"[{i + 1}/{len(plan)}] {label}: ", end="", flush=True, file=sys.stderr)
        try:
            so = None if params is None else compile_variant(args, name, params, auto)
            ok, summary = bit_exact(args, so, name, auto)
            print(("bit-exact" if ok else "NOT bit-exact") + f" ({summary})", file=sys.stderr, flush=True)
        except RuntimeError as e:
            print(f"failed: {e}", file=sys.stderr)
            ok = False
        checked[label] = ok
        if ok:
            rows.append((label, so, name, auto))
    print(f"timing {len(rows)} rows, interleaved, {args.repetitions} repetitions each", file=sys.stderr, flush=True)
    times = benchmark(args, rows)
    results = [(label, ok, times.get(label, {})) for label, ok in checked.items()]

    def geomean(t):
        return math.exp(sum(math.log(t[l]) for l in LAYERS_3X3) / len(LAYERS_3X3)) if all(l in t for l in LAYERS_3X3) else math.inf

    engine = family_row(args)[3]
    print(f"\n{args.family} ({engine}), {args.isa}, 1 thread, microseconds; geomean over the 3x3 layers; "
          "speed-up against the shipped kernel")
    print(f"| variant | bit-exact | {' | '.join(LAYERS)} | geomean 3x3 | vs shipped |")
    print("|---|---|" + "---|" * (len(LAYERS) + 2))
    shipped = geomean(results[0][2])
    for label, ok, times in sorted(results, key=lambda r: geomean(r[2])):
        g = geomean(times)
        cells = [f"{times[l] * 1e6:.1f}" if l in times else "-" for l in LAYERS]
        ratio = f"{shipped / g:.2f}" if math.isfinite(g) and math.isfinite(shipped) else "-"
        gm = f"{g * 1e6:.1f}" if math.isfinite(g) else "-"
        print(f"| {label} | {'yes' if ok else 'NO'} | {' | '.join(cells)} | {gm} | {ratio} |")
    print(f"(fastest of {args.repetitions} interleaved repetitions; variants and their .stmt/.s in {args.work})")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
