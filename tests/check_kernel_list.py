#!/usr/bin/python3
"""The kernel list (generators/kernels.inc) against the build: every listed library is built, its
test suite calls it, and its bench engines exist.

    tests/check_kernel_list.py BUILD_DIR

- The runtime's dispatch table (BUILD/runtime/generated/halibit_kernel_table.inc) holds exactly
  the listed libraries.
- Each line's suite ("<test executable> <gtest filter>") passes and calls the library on at
  least one ISA of this CPU (the suites write the libraries they called to HALIBIT_KERNEL_CALLS;
  tests/kernel_override_env.cpp). A library no suite reaches fails here, so a new line needs a
  test that runs it.
- Each engine of a bench field is registered by halibit-bench-kernels.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from sweep import kernel_list  # noqa: E402  (the one parser of the list)


def cpu_isas() -> list[str]:
    flags = open("/proc/cpuinfo").read().split()
    isas = [isa for isa, flag in (("avx512", "avx512f"), ("avx2", "avx2")) if flag in flags]
    return isas + ["scalar"]


def main() -> int:
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    kernels = kernel_list()
    failures = []

    table = open(os.path.join(build, "runtime", "generated", "halibit_kernel_table.inc")).read()
    built = set(re.findall(r"^HALIBIT_KERNEL\((\w+),", table, re.M))
    listed = {k.library for k in kernels}
    for lib in sorted(listed - built):
        failures.append(f"{lib}: in generators/kernels.inc but not built")
    for lib in sorted(built - listed):
        failures.append(f"{lib}: built but not in generators/kernels.inc")

    suites: dict[tuple[str, str], list[str]] = {}
    for k in kernels:
        suites.setdefault((k.test_binary, k.test_filter), []).append(k.library)
    with tempfile.TemporaryDirectory() as tmp:
        for (binary, test_filter), libraries in suites.items():
            called: set[str] = set()
            for isa in cpu_isas():
                calls = os.path.join(tmp, "calls.txt")
                r = subprocess.run([os.path.join(build, "tests", binary), f"--gtest_filter={test_filter}", "--gtest_brief=1"],
                                   env={**os.environ, "HALIBIT_ISA": isa, "HALIBIT_KERNEL_CALLS": calls},
                                   capture_output=True, text=True)
                if r.returncode != 0 or "PASSED" not in r.stdout:
                    failures.append(f"{binary} --gtest_filter={test_filter} (HALIBIT_ISA={isa}) failed:\n"
                                    + (r.stdout + r.stderr)[-1500:])
                    continue
                called |= set(open(calls).read().split())
            for lib in libraries:
                status = "called" if lib in called else "NOT CALLED"
                print(f"{lib:40s} {binary} {test_filter}: {status}")
                if lib not in called:
                    failures.append(f"{lib}: its suite {binary} {test_filter} does not call it on {', '.join(cpu_isas())}")

    engines = {f"{e}_auto" if k.targets == "li2018" else f"{e}_{isa}"
               for k in kernels for e in k.engines.values() for isa in ("avx512", "avx2", "scalar")}
    r = subprocess.run([os.path.join(build, "bench", "halibit-bench-kernels"), "--benchmark_list_tests"],
                       capture_output=True, text=True)
    registered = {line.split("/")[1] for line in r.stdout.splitlines() if line.startswith("conv/")}
    for e in sorted(engines - registered):
        failures.append(f"engine {e}: in a bench field of generators/kernels.inc but not in halibit-bench-kernels")
    print(f"{len(kernels)} kernels, {len(suites)} suites, {len(engines)} engines")

    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
