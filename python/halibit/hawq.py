"""HAWQ-V3 bit allocation: Hessian sensitivity per unit and an integer linear program.

    /usr/bin/python3 -m halibit.hawq --init fp32.pt --budget size=w4a4 [--latency-from halibit] -o plan.json

A unit (qresnet.UNITS) is the set of convolutions that read one activation tensor; its bits are
their weight bits and that tensor's code bits. For each unit u and bits b in --bits:

* sensitivity  Omega(u, b) = mean Hessian trace of u's weights * ||Q_b(W_u) - W_u||^2
                           + mean Hessian trace of u's input * E ||Q_b(a_u) - a_u||^2
  (Hutchinson: trace H ~ E[v^T H v] over Rademacher v, on the float model; Q_b is symmetric
  per-channel max-abs quantization for weights, as HAWQ-V3 uses to rank layers, and unsigned
  per-tensor quantization for the activation a_u with the MSE-optimal step). HAWQ-V3 counts the
  weight term only; here a unit's bits are also its input's bits, and at 2 bits the activation
  error dominates (`--weights-only` gives the paper's Omega),
* costs: size (bits x parameters), BOPs (MACs x b x b) and latency (the `halibit bench --json`
  median of u's layers in a model with every unit at b, measured on this machine).

The ILP (python3-pulp, CBC) picks one b per unit minimising sum Omega under the budget:
`size=w4a4` (at most the size of the all-4-bit model), `size=0.875*w4a4` (7/8 of it),
`bops=w4a4`, `latency=w4a4`, or a number (bits, BOPs, milliseconds).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

from . import fashion_mnist
from .modelfile import write_model
from .qresnet import UNITS, WIDTHS, SmallResNet, export, normalize
from .train import precision_name

BITS = (2, 4, 8)


def unit_params(model: SmallResNet):
    return {u: [m.conv.weight for m in convs] for u, convs in model.unit_convs().items()}


def _hutchinson(model: SmallResNet, images, labels, forward, batches, batch, samples, seed):
    """Hutchinson's estimator on random batches of training images. For each batch, yields
    (tensors, [[v^T H v for each tensor] for each of `samples` Rademacher vectors v]), H the Hessian
    of the batch's mean cross-entropy with respect to that tensor; forward(x) -> (logits, tensors)."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.eval()
    for _ in range(batches):
        idx = rng.choice(len(images), batch, replace=False)
        x = normalize(torch.from_numpy(images[idx]).permute(0, 3, 1, 2))
        y = torch.from_numpy(labels[idx].astype(np.int64))
        logits, tensors = forward(x)
        grads = torch.autograd.grad(F.cross_entropy(logits, y), tensors, create_graph=True)
        products = []
        for _ in range(samples):
            vs = [torch.randint(0, 2, t.shape, generator=gen).float() * 2 - 1 for t in tensors]
            hvs = torch.autograd.grad(grads, tensors, vs, retain_graph=True)
            products.append([float((hv * v).sum()) for hv, v in zip(hvs, vs)])
        yield tensors, products


def hessian_traces(model: SmallResNet, images, labels, batches=4, batch=256, samples=8, seed=0):
    """{unit: mean diagonal of the loss Hessian over u's weights} (Hutchinson)."""
    params = unit_params(model)
    flat = [p for u in UNITS for p in params[u]]
    owner = [u for u in UNITS for _ in params[u]]
    sums = {u: 0.0 for u in UNITS}
    for _, products in _hutchinson(model, images, labels, lambda x: (model(x), flat), batches, batch, samples, seed):
        for vhv in products:
            for u, p in zip(owner, vhv):
                sums[u] += p
    count = {u: sum(p.numel() for p in params[u]) for u in UNITS}
    return {u: sums[u] / (batches * samples) / count[u] for u in UNITS}


def unit_inputs(model: SmallResNet, x):
    """(logits, {unit: the activation tensor u's convolutions read}) in one forward pass."""
    inputs, hooks = {}, []

    def keep(u):
        def hook(mod, inp, out):  # returns None: the output stays as it is
            inputs.setdefault(u, inp[0])
        return hook

    for u, convs in model.unit_convs().items():
        hooks.append(convs[0].register_forward_hook(keep(u)))
    try:
        logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    return logits, inputs


def activation_sensitivity(model: SmallResNet, images, labels, bits, batches=4, batch=256, samples=8, seed=0):
    """{unit: {b: mean Hessian diagonal of one image's loss over u's input x E ||Q_b(a) - a||^2}}."""
    def forward(x):
        logits, acts = unit_inputs(model, x)
        return logits, [acts[u] for u in UNITS]

    trace = {u: 0.0 for u in UNITS}
    error = {u: {b: 0.0 for b in bits} for u in UNITS}
    for a, products in _hutchinson(model, images, labels, forward, batches, batch, samples, seed + 1):
        for vhv in products:
            for u, p, t in zip(UNITS, vhv, a):
                # The loss is a batch mean: v^T H v / (elements per image) is one image's mean diagonal.
                trace[u] += p / t[0].numel()
        for u, t in zip(UNITS, a):
            t = t.detach()
            for b in bits:
                error[u][b] += activation_error(t, b) / len(t)
    n = batches * samples
    return {u: {b: trace[u] / n * error[u][b] / batches for b in bits} for u in UNITS}


def activation_error(a: torch.Tensor, bits: int) -> float:
    """min over steps s of ||clamp(round(a / s), 0, 2^b - 1) * s - a||^2 (a >= 0: post-ReLU)."""
    top = float(a.max())
    if top <= 0:
        return 0.0
    levels = (1 << bits) - 1
    best = None
    for frac in np.linspace(0.05, 1.0, 40):  # clipping at a fraction of the maximum
        s = top * frac / levels
        err = float(((torch.clamp(torch.round(a / s), 0, levels) * s - a) ** 2).sum())
        best = err if best is None else min(best, err)
    return best


def quantization_error(model: SmallResNet, bits):
    """{unit: {b: ||Q_b(W) - W||^2}} with symmetric per-output-channel max-abs steps."""
    out = {}
    for u, ps in unit_params(model).items():
        out[u] = {}
        for b in bits:
            err = 0.0
            for w in ps:
                w = w.detach()
                step = w.abs().reshape(w.shape[0], -1).amax(dim=1).clamp_min(1e-12) / ((1 << (b - 1)) - 1 if b > 1 else 1)
                step = step.reshape(-1, 1, 1, 1)
                q = (torch.sign(w) if b == 1 else torch.clamp(torch.round(w / step), -(1 << (b - 1)), (1 << (b - 1)) - 1))
                err += float(((q * step - w) ** 2).sum())
            out[u][b] = err
    return out


def unit_macs(model: SmallResNet):
    """{unit: MACs per image}."""
    macs = {}
    hooks = []
    counts = {}

    def hook(mod, inp, out):
        c = mod.conv
        counts[id(mod)] = out.shape[2] * out.shape[3] * c.out_channels * (c.in_channels // c.groups) * \
            c.kernel_size[0] * c.kernel_size[1]

    units = model.unit_convs()
    for convs in units.values():
        for m in convs:
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    for u, convs in units.items():
        macs[u] = sum(counts[id(m)] for m in convs)
    return macs


def measure_latency(model: SmallResNet, bits, halibit, images, repeat=200, log=print):
    """{unit: {b: ms}}: `halibit bench --json` of a model with every unit at b bits (weights from
    `model`, activation steps initialised on a batch of images)."""
    out = {u: {} for u in UNITS}
    with tempfile.TemporaryDirectory() as tmp:
        for b in bits:
            q = SmallResNet(((("signed", b) if b > 1 else ("binary", 1)),) * len(UNITS), model.groups, model.widths)
            q.load_state_dict(model.state_dict(), strict=False)
            with torch.no_grad():
                q.train()(normalize(torch.from_numpy(images[:256]).permute(0, 3, 1, 2)))  # LSQ step init
            graph, tensors = export(q, f"hawq-latency-w{b}a{b}")
            path = os.path.join(tmp, f"w{b}a{b}.halibit")
            write_model(path, graph, tensors)
            js = os.path.join(tmp, f"w{b}a{b}.json")
            subprocess.run([halibit, "bench", path, "--repeat", str(repeat), "--warmup", "20", "--json", js],
                           check=True, stdout=subprocess.DEVNULL)
            with open(js) as f:
                layers = {l["name"]: l["median_ms"] for l in json.load(f)["layers"]}
            for u, convs in model.unit_convs().items():
                names = [u] + ([u.replace("conv1", "downsample")] if len(convs) > 1 else [])
                out[u][b] = sum(layers[n] for n in names)
            log(f"latency w{b}a{b}: " + ", ".join(f"{u} {out[u][b]:.4f} ms" for u in UNITS))
    return out


def allocate(omega, cost, budget, bits):
    """The ILP: {unit: bits} minimising sum omega[u][b] subject to sum cost[u][b] <= budget."""
    import pulp

    prob = pulp.LpProblem("hawq_v3", pulp.LpMinimize)
    x = {(u, b): pulp.LpVariable(f"x_{i}_{b}", cat="Binary") for i, u in enumerate(UNITS) for b in bits}
    prob += pulp.lpSum(omega[u][b] * x[u, b] for u in UNITS for b in bits)
    for u in UNITS:
        prob += pulp.lpSum(x[u, b] for b in bits) == 1
    prob += pulp.lpSum(cost[u][b] * x[u, b] for u in UNITS for b in bits) <= budget
    status = prob.solve(pulp.COIN_CMD(msg=False))  # Debian: CBC from coinor-cbc, not a bundled binary
    if pulp.LpStatus[status] != "Optimal":
        raise ValueError(f"hawq: the ILP is {pulp.LpStatus[status]} (budget {budget} too small?)")
    return {u: next(b for b in bits if x[u, b].value() > 0.5) for u in UNITS}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m halibit.hawq", description=__doc__.splitlines()[0])
    p.add_argument("--init", required=True, help="float checkpoint (.pt) of the network")
    p.add_argument("--groups", type=int, default=1)
    p.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    p.add_argument("--bits", default=",".join(map(str, BITS)), help="bit-widths to choose from (default %(default)s)")
    p.add_argument("--budget", default="size=w4a4", help="size|bops|latency = w<b>a<b> or a number (default %(default)s)")
    p.add_argument("--latency-from", metavar="HALIBIT", help="the halibit tool, to measure latency per unit and bits")
    p.add_argument("--data", default=fashion_mnist.DEFAULT_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights-only", action="store_true",
                   help="Omega from the weight perturbation only, as in HAWQ-V3 (default: weights and input activations)")
    p.add_argument("-o", "--output", required=True, help="JSON: traces, costs, the chosen bits and the --precision plan")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    bits = tuple(int(b) for b in args.bits.split(","))
    model = SmallResNet((None,) * len(UNITS), args.groups, tuple(int(w) for w in args.widths.split(",")))
    model.load_state_dict(torch.load(args.init))
    images, labels = fashion_mnist.load("train", args.data)
    log = lambda m: print(m, flush=True)

    traces = hessian_traces(model, images, labels, seed=args.seed)
    errors = quantization_error(model, bits)
    omega = {u: {b: traces[u] * errors[u][b] for b in bits} for u in UNITS}
    act = None
    if not args.weights_only:
        act = activation_sensitivity(model, images, labels, bits, seed=args.seed)
        omega = {u: {b: omega[u][b] + act[u][b] for b in bits} for u in UNITS}
    params = {u: sum(w.numel() for w in ws) for u, ws in unit_params(model).items()}
    macs = unit_macs(model)
    costs = {"size": {u: {b: params[u] * b for b in bits} for u in UNITS},
             "bops": {u: {b: macs[u] * b * b for b in bits} for u in UNITS}}
    kind, _, value = args.budget.partition("=")
    if kind not in ("size", "bops", "latency"):
        raise SystemExit(f"--budget {args.budget!r}: expected size=, bops= or latency=")
    if kind == "latency" or args.latency_from:
        if not args.latency_from:
            raise SystemExit("--budget latency needs --latency-from HALIBIT (the halibit tool)")
        costs["latency"] = measure_latency(model, bits, args.latency_from, images, log=log)
    cost = costs[kind]
    fraction, _, ref_name = value.rpartition("*")  # "w4a4", "0.875*w4a4" or a number
    if ref_name.startswith("w"):
        ref = int(ref_name[1:].split("a")[0])
        if ref not in bits:
            raise SystemExit(f"--budget {args.budget!r}: {ref} bits is not one of --bits")
        budget = float(fraction or 1) * sum(cost[u][ref] for u in UNITS)
    else:
        budget = float(value)
    chosen = allocate(omega, cost, budget, bits)
    plan = ",".join(precision_name(chosen[u]) for u in UNITS)
    for u in UNITS:
        log(f"{u:16s} trace {traces[u]:.3e}  " + "  ".join(f"Omega(w{b})={omega[u][b]:.3e}" for b in bits) +
            ("" if act is None else "  (activations " + " ".join(f"{act[u][b]:.3e}" for b in bits) + ")") +
            f"  -> {chosen[u]} bits")
    used = sum(cost[u][chosen[u]] for u in UNITS)
    log(f"budget {kind} {budget:.6g}, used {used:.6g}; plan: {plan}")
    with open(args.output, "w") as f:
        json.dump({"budget": {"kind": kind, "value": budget, "used": used}, "bits": list(bits), "traces": traces,
                   "quantization_error": errors,
                   "activation_omega": act, "omega": omega, "costs": costs, "chosen": chosen, "plan": plan},
                  f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
