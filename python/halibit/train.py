"""Command line: train a small ResNet on Fashion-MNIST (CPU) and export it to a halibit model file.

    /usr/bin/python3 -m halibit.train --precision fp32 --epochs 15 --save fp32.pt
    /usr/bin/python3 -m halibit.train --precision w2a2 --init fp32.pt --epochs 6 -o models/w2a2.halibit

--precision is fp32, w<b>a<b> (signed weights, b = 2..8), w1a1 (binary), w2a2odd, w2a2codebook (4 learned
levels per layer), or a plan of one per block
(`w8a8,w4a4,w2a2`) or one per unit (six, see qresnet.UNITS). --groups G builds the PalQuant network (G parallel groups per block).
The exported file's accuracy is measured with the integer simulator on the 10,000 test images
(the number `halibit eval` reproduces to the image).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import fashion_mnist, simulator
from .modelfile import write_model
from .qresnet import UNITS, WIDTHS, SmallResNet, export, normalize, palquant_state

PRECISIONS = {**{f"w{b}a{b}": ("signed", b) for b in range(8, 1, -1)}, "w1a1": ("binary", 1), "w2a2odd": ("odd", 2),
              "w2a2codebook": ("codebook", 2)}


def precision_name(bits: int) -> str:
    """The --precision name of a unit at `bits` (signed weights, binary at 1 bit)."""
    return f"w{bits}a{bits}"


def parse_plan(text: str):
    """'fp32' -> float; 'w2a2' -> every unit; a comma list of 3 (per block) or 6 (per unit, see
    qresnet.UNITS) of the names in PRECISIONS."""
    units = len(UNITS)
    if text == "fp32":
        return (None,) * units
    names = text.split(",")
    if len(names) == 1:
        names = names * units
    elif len(names) == units // 2:
        names = [n for n in names for _ in range(2)]
    if len(names) != units or any(n not in PRECISIONS for n in names):
        raise ValueError(f"--precision {text!r}: fp32, one of {', '.join(PRECISIONS)}, or a comma list of "
                         f"{units // 2} (per block) or {units} (per unit) of them")
    return tuple(PRECISIONS[n] for n in names)


class Progress:
    """One status line on stderr, rewritten in place (a plain line per update when not a tty)."""

    def __init__(self, total, what):
        self.total, self.what, self.t0, self.tty = total, what, time.time(), sys.stderr.isatty()
        self.last = 0.0

    def update(self, done, extra=""):
        now = time.time()
        if done < self.total and now - self.last < (0.2 if self.tty else 30):
            return
        self.last = now
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0
        bar = "#" * int(30 * done / self.total)
        line = f"{self.what} [{bar:<30}] {done}/{self.total} {extra} eta {eta:.0f}s"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if done >= self.total and self.tty:
            sys.stderr.write("\n")
        sys.stderr.flush()


def batches(images, labels, batch, rng, augment):
    """Shuffled (x, y) minibatches; augment = random 2-pixel shifts and horizontal flips."""
    n = len(images)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, batch):
        idx = order[i:i + batch]
        x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2)  # uint8 NCHW
        if augment:
            padded = F.pad(x, (2, 2, 2, 2), value=int(round(fashion_mnist.MEAN[0] * 255)))
            dy, dx = rng.integers(0, 5, size=2)
            x = padded[:, :, dy:dy + 28, dx:dx + 28]
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        yield normalize(x), torch.from_numpy(labels[idx].astype(np.int64))


def evaluate(model, images, labels, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in batches(images, labels, batch, None, False):
            correct += int((model(x).argmax(1) == y).sum())
    return correct / len(images)


def simulate(graph, tensors, images, labels, batch=500):
    """Top-1 accuracy and predictions of the exported integer model (halibit.simulator)."""
    preds = []
    prog = Progress(len(images), "integer simulator")
    for i in range(0, len(images), batch):
        preds.append(simulator.run(graph, tensors, images[i:i + batch]).argmax(axis=1))
        prog.update(min(i + batch, len(images)))
    preds = np.concatenate(preds).astype(np.uint8)
    return float((preds == labels).mean()), preds


def train(model, train_set, test_set, epochs, lr, seed, weight_decay, log):
    if epochs == 0:
        return []  # export only: --init is a trained checkpoint
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images, labels = train_set
    steps_per_epoch = math.ceil(len(images) / 128)
    # steps (LSQ) and BN parameters are not decayed
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0}],
                          lr=lr, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    history = []
    for epoch in range(epochs):
        model.train()
        prog = Progress(len(images), f"epoch {epoch + 1}/{epochs}")
        seen, loss_sum, t0 = 0, 0.0, time.time()
        for x, y in batches(images, labels, 128, rng, True):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
            loss_sum += float(loss) * len(y)
            prog.update(seen, f"loss {loss_sum / seen:.3f}")
        acc = evaluate(model, *test_set)
        history.append({"epoch": epoch + 1, "loss": round(loss_sum / seen, 4), "test_top1": round(acc, 4),
                        "seconds": round(time.time() - t0, 1)})
        log(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f}, test top-1 {100 * acc:.2f}% "
            f"({time.time() - t0:.0f} s)")
    return history


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m halibit.train", description=__doc__.splitlines()[0])
    p.add_argument("--precision", required=True, help="fp32, w<b>a<b> (b = 1..8), w2a2odd or a per-block or per-unit plan")
    p.add_argument("--groups", type=int, default=1, help="PalQuant parallel groups G (default 1)")
    p.add_argument("--widths", default=",".join(map(str, WIDTHS)), help="block widths (default %(default)s)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--init", help="checkpoint (.pt) to start from: same widths and groups, or a plain network "
                                  "that --groups widens (PalQuant)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=fashion_mnist.DEFAULT_DIR)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only (smoke tests)")
    p.add_argument("--test-limit", type=int, default=0, help="test on the first N test images only (smoke tests)")
    p.add_argument("--save", help="write the trained checkpoint (.pt) here")
    p.add_argument("-o", "--output", help="write the exported model file here (quantized models)")
    p.add_argument("--name", help="model name in the file (default: the output's base name)")
    p.add_argument("--summary", help="write a JSON summary (history, accuracies) here")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    plan = parse_plan(args.precision)
    widths = tuple(int(w) for w in args.widths.split(","))
    model = SmallResNet(plan, args.groups, widths)
    if args.init:
        state = torch.load(args.init)
        if args.groups > 1 and state["stem.conv.weight"].shape[0] * args.groups == model.stem.conv.weight.shape[0]:
            state = palquant_state(state, args.groups)  # a plain network: widen it into G groups
        if model.fc.bias is None:
            state.pop("fc.bias", None)  # the integer fc has no bias (one output scale for all logits)
        missing, unexpected = model.load_state_dict(state, strict=False)
        bad = [k for k in missing if not (".wq." in k or "act" in k or k.startswith("fcq."))] + unexpected
        if bad:
            raise SystemExit(f"--init {args.init}: does not match the network: {bad[:5]}")
    train_set = fashion_mnist.load("train", args.data)
    test_set = fashion_mnist.load("t10k", args.data)
    if args.limit:
        train_set = (train_set[0][:args.limit], train_set[1][:args.limit])
    if args.test_limit:
        test_set = (test_set[0][:args.test_limit], test_set[1][:args.test_limit])
    log = lambda m: print(m, flush=True)
    log(f"training {args.precision} groups={args.groups} widths={widths} on {len(train_set[0])} images, "
        f"{args.epochs} epochs, {args.threads} threads")
    history = train(model, train_set, test_set, args.epochs, args.lr, args.seed, args.weight_decay, log)
    summary = {"command": "python3 -m halibit.train " + " ".join(sys.argv[1:] if argv is None else argv),
               "precision": args.precision, "groups": args.groups, "widths": list(widths), "epochs": args.epochs,
               "lr": args.lr, "seed": args.seed, "init": args.init, "history": history,
               "float_top1": history[-1]["test_top1"] if history else evaluate(model, *test_set)}
    if args.save:
        torch.save(model.state_dict(), args.save)
    if args.output:
        name = args.name or os.path.splitext(os.path.basename(args.output))[0]
        graph, tensors = export(model, name)
        write_model(args.output, graph, tensors)
        acc, preds = simulate(graph, tensors, *test_set)
        summary["integer_top1"] = acc
        np.save(os.path.splitext(args.output)[0] + ".predictions.npy", preds)
        log(f"wrote {args.output}: integer simulator top-1 {100 * acc:.2f}% on {len(preds)} test images")
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
