"""Plain-loop, Python-int reference of every op in docs/model-format.md (independent of halibit.simulator)."""


def rnd(v, s):
    return (v + ((1 << (s - 1)) if s > 0 else 0)) >> s  # Python ints: arithmetic shift, no overflow


def clamp(v, bits):
    return min(max(v, 0), (1 << bits) - 1)


def conv(x, w, stride, pad, groups, pad_values=None):
    """x: nested lists / array [N][H][W][C]; w: [Cout][KH][KW][Cg]; returns nested lists of ints."""
    N, H, W, C = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    Cout, KH, KW, Cg = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    Cog = Cout // groups
    pv = pad_values if pad_values is not None else [0] * C
    out = [[[[0] * Cout for _ in range(OW)] for _ in range(OH)] for _ in range(N)]
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for co in range(Cout):
                    g = co // Cog
                    acc = 0
                    for ky in range(KH):
                        for kx in range(KW):
                            iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                            inside = 0 <= iy < H and 0 <= ix < W
                            for c in range(Cg):
                                ci = g * Cg + c
                                a = int(x[n][iy][ix][ci]) if inside else pv[ci]
                                acc += a * int(w[co][ky][kx][c])
                    out[n][oy][ox][co] = acc
    return out


def map4(x, f):
    return [[[[f(v, c) for c, v in enumerate(px)] for px in row] for row in img] for img in x]


def requantize(acc, M, B, S, bits):
    return map4(acc, lambda v, c: clamp(rnd(int(v) * int(M[c]) + int(B[c]), S), bits))


def add(x0, x1, M0, M1, B, S, bits):
    N, H, W, C = len(x0), len(x0[0]), len(x0[0][0]), len(x0[0][0][0])
    return [[[[clamp(rnd(int(x0[n][y][i][c]) * int(M0[c]) + int(x1[n][y][i][c]) * int(M1[c]) + int(B[c]), S), bits)
               for c in range(C)] for i in range(W)] for y in range(H)] for n in range(N)]


def max_pool(x, KH, KW, stride, pad):
    N, H, W, C = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    out = [[[[None] * C for _ in range(OW)] for _ in range(OH)] for _ in range(N)]
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                for c in range(C):
                    vals = [int(x[n][oy * stride + ky - pad][ox * stride + kx - pad][c])
                            for ky in range(KH) for kx in range(KW)
                            if 0 <= oy * stride + ky - pad < H and 0 <= ox * stride + kx - pad < W]
                    out[n][oy][ox][c] = max(vals)
    return out


def global_avg_pool(x, m, S, bits):
    N, H, W, C = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    return [[[[clamp(rnd(sum(int(x[n][y][i][c]) for y in range(H) for i in range(W)) * m, S), bits)
               for c in range(C)]]] for n in range(N)]


def channel_shuffle(x, G):
    C = len(x[0][0][0])
    K = C // G
    perm = [None] * C
    for g in range(G):
        for k in range(K):
            perm[k * G + g] = g * K + k
    return [[[[px[perm[c]] for c in range(C)] for px in row] for row in img] for img in x]


def run(graph, tensors, images):
    """The whole graph with the functions above; returns {tensor name: nested lists}."""
    env = {graph["input"]["tensor"]: images.tolist()}
    for L in graph["layers"]:
        xs = [env[t] for t in L["inputs"]]
        spec = graph["tensors"][L["output"]]
        op = L["op"]
        if op == "conv":
            acc = conv(xs[0], tensors[L["weights"]["tensor"]].tolist(), L["stride"], L["pad"], L["groups"],
                       L.get("pad_values"))
            rq = L.get("requantize")
            if rq is not None:
                out = requantize(acc, tensors[rq["multiplier"]].tolist(), tensors[rq["bias"]].tolist(), rq["shift"],
                                 spec["bits"])
            elif "bias" in L:  # format version 3: int32 bias
                bias = tensors[L["bias"]].tolist()
                out = map4(acc, lambda v, c: v + bias[c])
            else:
                out = acc
        elif op == "add":
            out = add(xs[0], xs[1], tensors[L["multipliers"][0]].tolist(), tensors[L["multipliers"][1]].tolist(),
                      tensors[L["bias"]].tolist(), L["shift"], spec["bits"])
        elif op == "max_pool":
            out = max_pool(xs[0], L["kernel"][0], L["kernel"][1], L["stride"], L["pad"])
        elif op == "global_avg_pool":
            out = global_avg_pool(xs[0], L["multiplier"], L["shift"], spec["bits"])
        elif op == "channel_shuffle":
            out = channel_shuffle(xs[0], L["groups"])
        env[L["output"]] = out
    return env
