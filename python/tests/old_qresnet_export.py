"""The SmallResNet exporter as it was before halibit.fx_export (hand-written for qresnet's
structure), kept verbatim as the reference that fx_export must reproduce byte for byte
(python/tests/test_fx_export.py). Not part of the package."""
from __future__ import annotations

import numpy as np

from halibit import fashion_mnist
from halibit.dyadic import requant_params
from halibit.fold import fold_batchnorm
from halibit.modelfile import FORMAT_VERSION


def _np(t):
    return t.detach().cpu().double().numpy()


class _Exporter:
    def __init__(self, name, labels):
        self.tensors, self.layers, self.stored = {}, [], {}
        self.graph = {"format_version": FORMAT_VERSION, "name": name,
                      "input": {"tensor": "image", "color": "gray", "mean": list(fashion_mnist.MEAN),
                                "std": list(fashion_mnist.STD)},
                      "output": None, "labels": list(labels), "tensors": self.tensors, "layers": self.layers}

    def tensor(self, name, shape, type_, scale, bits=None):
        spec = {"shape": [int(d) for d in shape], "type": type_}
        if bits is not None:
            spec["bits"] = int(bits)
        spec["scale"] = float(scale)
        self.tensors[name] = spec
        return name

    def store(self, name, a):
        self.stored[name] = a
        return name

    def conv(self, name, x, m, in_scale, in_max, out_bits=None, out_scale=None, pad_values=None,
             bias_extra=None):
        """Adds conv `name`; returns (output, per-channel acc scale * bn scale, bn shift, |acc| bound)."""
        c = m.conv
        wq = m.wq
        w = c.weight.detach()
        q = wq.integer(w).detach().round()
        steps = _np(wq.file_steps()).reshape(-1)
        qi = q.permute(0, 2, 3, 1).cpu().numpy().astype(np.int8)  # [Cout, KH, KW, Cin/groups]
        H, W, _ = self.tensors[x]["shape"]
        KH, KW = c.kernel_size
        s, p = c.stride[0], c.padding[0]
        OH, OW = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
        bn = m.bn
        bn_scale, bn_shift = fold_batchnorm(_np(bn.weight), _np(bn.bias), _np(bn.running_mean),
                                            _np(bn.running_var), bn.eps)
        if bias_extra is not None:
            bn_shift = bn_shift + bn_scale * bias_extra(steps, qi)
        amax = max(in_max, max(pad_values) if pad_values else 0)
        wf = np.abs(qi.reshape(qi.shape[0], -1).astype(np.int64))
        bound = int(wf.sum(axis=1).max()) * amax
        layer = {"name": name, "op": "conv", "inputs": [x], "output": name, "kernel": [KH, KW], "stride": s,
                 "pad": p, "groups": c.groups,
                 "weights": {"tensor": self.store(f"{name}.weight", qi), "encoding": wq.encoding, "bits": wq.bits}}
        if wq.encoding == "codebook":
            layer["weights"]["levels"] = [int(v) for v in wq.integer_levels().tolist()]
        if pad_values is not None:
            layer["pad_values"] = [int(v) for v in pad_values]
        acc_coeff = in_scale * steps * bn_scale
        if out_bits is None:
            self.tensor(name, [OH, OW, qi.shape[0]], "int32", float(np.median(in_scale * steps)))
        else:
            (M,), B, S = requant_params([acc_coeff / out_scale], bn_shift / out_scale, [bound])
            layer["requantize"] = {"multiplier": self.store(f"{name}.multiplier", M),
                                   "bias": self.store(f"{name}.bias", B), "shift": int(S)}
            self.tensor(name, [OH, OW, qi.shape[0]], "codes", out_scale, out_bits)
        self.layers.append(layer)
        return name, acc_coeff, bn_shift, bound


def export(model, name: str, labels=fashion_mnist.LABELS):
    """(graph, stored tensors) of a quantized SmallResNet in eval mode (BN running statistics)."""
    if model.plan[0] is None:
        raise ValueError("export: the model is not quantized (plan of None)")
    model = model.eval()
    e = _Exporter(name, labels)
    mean, std = fashion_mnist.MEAN[0], fashion_mnist.STD[0]
    image_scale = 1.0 / (255.0 * std)
    e.tensor("image", [28, 28, 1], "codes", image_scale, 8)

    def stem_bias(steps, qi):  # the normalisation's mean: x = code * image_scale - mean / std
        return -(mean / std) * steps * qi.reshape(qi.shape[0], -1).astype(np.float64).sum(axis=1)

    sa = model.stem_act
    x, *_ = e.conv("conv1", "image", model.stem, image_scale, 255, sa.bits, float(sa.step),
                   pad_values=[int(round(mean * 255))], bias_extra=stem_bias)
    x_scale, x_max = float(sa.step), sa.qmax
    for i, b in enumerate(model.blocks):
        prefix = f"layer{i + 1}.0"
        a1, ao = b.act1, b.act_out
        h, *_ = e.conv(f"{prefix}.conv1", x, b.conv1, x_scale, x_max, a1.bits, float(a1.step))
        h2, coeff2, shift2, bound2 = e.conv(f"{prefix}.conv2", h, b.conv2, float(a1.step), a1.qmax)
        if b.downsample is not None:
            short, coeff1, shift1, bound1 = e.conv(f"{prefix}.downsample", x, b.downsample, x_scale, x_max)
        else:
            short, coeff1, shift1, bound1 = x, np.full(coeff2.shape, x_scale), 0.0, x_max
        out_scale = float(ao.step)
        (M0, M1), B, S = requant_params([coeff2 / out_scale, coeff1 / out_scale], (shift2 + shift1) / out_scale,
                                        [bound2, bound1])
        add = f"{prefix}.add"
        e.layers.append({"name": add, "op": "add", "inputs": [h2, short], "output": add,
                         "multipliers": [e.store(f"{add}.multiplier0", M0), e.store(f"{add}.multiplier1", M1)],
                         "bias": e.store(f"{add}.bias", B), "shift": int(S)})
        e.tensor(add, e.tensors[h2]["shape"], "codes", out_scale, ao.bits)
        x, x_scale, x_max = add, out_scale, ao.qmax
        if b.shuffle_out:
            sh = f"{prefix}.shuffle"
            e.layers.append({"name": sh, "op": "channel_shuffle", "inputs": [x], "output": sh, "groups": b.groups})
            e.tensor(sh, e.tensors[x]["shape"], "codes", x_scale, ao.bits)
            x = sh
    H, W, C = e.tensors[x]["shape"]
    pa = model.pool_act
    (M,), _, S = requant_params([[x_scale / (H * W * float(pa.step))]], [0.0], [H * W * x_max])
    e.layers.append({"name": "avgpool", "op": "global_avg_pool", "inputs": [x], "output": "avgpool",
                     "multiplier": int(M[0]), "shift": int(S)})
    e.tensor("avgpool", [1, 1, C], "codes", float(pa.step), 8)
    fq = model.fcq
    q = fq.integer(model.fc.weight.detach()).detach().round().cpu().numpy().astype(np.int8)
    e.layers.append({"name": "fc", "op": "conv", "inputs": ["avgpool"], "output": "logits", "kernel": [1, 1],
                     "stride": 1, "pad": 0, "groups": 1,
                     "weights": {"tensor": e.store("fc.weight", q.reshape(q.shape[0], 1, 1, C)),
                                 "encoding": "signed", "bits": 8}})
    logit_scale = float(pa.step) * float(fq.step)
    e.tensor("logits", [1, 1, q.shape[0]], "int32", logit_scale)
    e.graph["output"] = {"tensor": "logits", "scale": logit_scale}
    return e.graph, e.stored
