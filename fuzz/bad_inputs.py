#!/usr/bin/python3
"""The bad-input catalogue of docs/RELIABILITY.md: writes every bad file, runs the `halibit`
command line on it and prints one Markdown table row per case (file kind, what is wrong, the
message the user sees, the exit code).

    /usr/bin/python3 fuzz/bad_inputs.py build/apps/halibit > /tmp/table.md

Exits 1 if any case crashes (a signal, a sanitizer report), exits with something other than 1,
prints more than one line, or takes longer than its time limit. The valid starting points are
the seed corpus (fuzz/corpus/): models tiny_gray_w1w2.halibit (8x8 gray, 4 classes),
tiny_every_op.halibit and tiny_bias_v3.halibit (int32 biases, format version 3); the files are
written to a temporary directory, which is the working directory of each command, so messages
name them without a path. Cases that take more than one second of CPU time show it.
"""
import copy
import gzip
import io
import json
import resource
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
GRAY = "gray.halibit"  # 8x8x1 input, 4 classes: classify, eval and run use it


# -- model files -------------------------------------------------------------------------------

def split(data: bytes):
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    graph = json.loads(header["__metadata__"]["halibit"])
    return header, graph, bytearray(data[8 + n:])


def join(header, graph, body, raw_header=None) -> bytes:
    header = copy.deepcopy(header)
    header["__metadata__"] = {"halibit": graph if isinstance(graph, str) else json.dumps(graph)}
    text = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(body)


def model_cases():
    base = (CORPUS / "model" / "tiny_every_op.halibit").read_bytes()
    h0, g0, d0 = split(base)
    hb, gb, db = split((CORPUS / "model" / "tiny_bias_v3.halibit").read_bytes())

    def edit(fn):
        h, g, d = copy.deepcopy(h0), copy.deepcopy(g0), bytearray(d0)
        fn(h, g, d)
        return join(h, g, d)

    def edit_bias(fn):  # the version 3 model: conv 'branch' (int32, read by add 'res') and 'fc' have biases
        h, g, d = copy.deepcopy(hb), copy.deepcopy(gb), bytearray(db)
        fn(h, g, d)
        return join(h, g, d)

    def layer(g, name):
        return next(l for l in g["layers"] if l["name"] == name)

    def fill(h, d, tensor, fmt, value):
        begin, end = h[tensor]["data_offsets"]
        for o in range(begin, end, struct.calcsize("<" + fmt)):
            struct.pack_into("<" + fmt, d, o, value)

    deep = "[" * 200000 + "]" * 200000
    header_text = json.dumps({**h0, "__metadata__": {"halibit": json.dumps(g0)}}).encode()
    first = next(k for k in h0 if k != "__metadata__")
    return [
        ("empty file (0 bytes)", b""),
        ("5 bytes", base[:5]),
        ("cut in the middle of the data", base[:len(base) - 40]),
        ("header length 2^40", struct.pack("<Q", 1 << 40) + base[8:]),
        ("header is not JSON", struct.pack("<Q", 4) + b"{{{{" + base[12:]),
        ("header is a JSON list", struct.pack("<Q", 2) + b"[]"),
        ("header nests 200,000 levels deep", join({}, "{}", b"", raw_header=b'{"w": {"dtype": ' + deep.encode() + b"}}")),
        ("graph nests 200,000 levels deep", join({}, '{"format_version": ' + deep + "}", b"")),
        ("plain safetensors file (no __metadata__.halibit)",
         join({}, "", b"", raw_header=json.dumps({k: v for k, v in h0.items() if k != "__metadata__"}).encode()) + bytes(d0)),
        ("graph is not JSON", join(h0, "{not json", d0)),
        ("format_version 4", edit(lambda h, g, d: g.update(format_version=4))),
        ("stored tensor dtype F32", edit(lambda h, g, d: h[first].update(dtype="F32"))),
        ("stored tensor shape [65536, 65536, 65536]", edit(lambda h, g, d: h[first].update(shape=[65536] * 3))),
        ("data_offsets past the end of the file", edit(lambda h, g, d: h[first].update(data_offsets=[0, 10 ** 12]))),
        ("data_offsets size does not match the shape", edit(lambda h, g, d: h[first].update(data_offsets=[0, 1]))),
        ("two tensors overlap",
         edit(lambda h, g, d: h["c1.weight"].update(data_offsets=[h["c2.weight"]["data_offsets"][0],
                                                                    h["c2.weight"]["data_offsets"][0] + 108]))),
        ("activation shape [70000, 1, 1]", edit(lambda h, g, d: g["tensors"]["image"].update(shape=[70000, 1, 1]))),
        ("activation shape [65536, 65536, 1] (2^32 elements)",
         edit(lambda h, g, d: g["tensors"]["c1"].update(shape=[65536, 65536, 1]))),
        ("input tensor is 4-bit codes", edit(lambda h, g, d: g["tensors"]["image"].update(bits=4))),
        ("input color 'gray' with 3 channels", edit(lambda h, g, d: g["input"].update(color="gray"))),
        ("output tensor is codes", edit(lambda h, g, d: g["tensors"]["logits"].update(type="codes", bits=8))),
        ("4 labels for 3 classes", edit(lambda h, g, d: g.update(labels=["a", "b", "c", "d"]))),
        ("layer op 'softmax'", edit(lambda h, g, d: layer(g, "c2").update(op="softmax"))),
        ("layer reads a tensor before it is written", edit(lambda h, g, d: layer(g, "c1").update(inputs=["c2"]))),
        ("conv output shape does not match", edit(lambda h, g, d: layer(g, "c2").update(stride=1))),
        ("weights tensor missing", edit(lambda h, g, d: layer(g, "c2")["weights"].update(tensor="nope"))),
        ("weights tensor has the wrong shape", edit(lambda h, g, d: layer(g, "c2")["weights"].update(tensor="c1.weight"))),
        ("packed weights with bits set past the last field",
         edit(lambda h, g, d: fill(h, d, "c4.weight", "B", 255))),
        ("packed weights of version 1's int8 layout", edit(lambda h, g, d: h["c1.weight"].update(dtype="I8", shape=[4, 3, 3, 3]))),
        ("codebook of 3 levels for 2-bit indices", edit(lambda h, g, d: layer(g, "c7")["weights"].update(levels=[1, 2, 3]))),
        ("codebook level 200", edit(lambda h, g, d: layer(g, "c7")["weights"].update(levels=[1, 2, 3, 200]))),
        ("format_version 1 over packed weights", edit(lambda h, g, d: g.update(format_version=1))),
        ("3-bit 'binary' weights", edit(lambda h, g, d: layer(g, "c4")["weights"].update(bits=3))),
        ("groups 4 do not divide 3 channels", edit(lambda h, g, d: layer(g, "c1").update(groups=4))),
        ("kernel 16", edit(lambda h, g, d: layer(g, "c1").update(kernel=[16, 16]))),
        ("max_pool pad >= kernel", edit(lambda h, g, d: layer(g, "pool").update(pad=3))),
        ("8-bit weights of 127 on 8-bit codes, 70000 per channel: accumulator beyond int32", None),
        ("requantize bias 2^63-1: acc * multiplier + bias overflows int64",
         edit(lambda h, g, d: fill(h, d, "c1.bias", "q", (1 << 63) - 1))),
        ("add multiplier 2^31-1 and bias 2^63-1: overflows int64 (was undefined behaviour in glue.cpp)",
         edit(lambda h, g, d: (fill(h, d, "res.bias", "q", (1 << 63) - 1), fill(h, d, "res.multiplier0", "i", (1 << 31) - 1)))),
        ("global_avg_pool multiplier 2^31", edit(lambda h, g, d: layer(g, "avgpool").update(multiplier=1 << 31))),
        ("conv int32 bias in a format version 2 file", edit_bias(lambda h, g, d: g.update(format_version=2))),
        ("conv bias on a requantizing conv", edit_bias(lambda h, g, d: layer(g, "stem").update(bias="fc.bias"))),
        ("conv bias tensor of dtype I64", edit_bias(lambda h, g, d: layer(g, "fc").update(bias="res.bias"))),
        ("conv bias tensor of shape [4] for 3 output channels",
         edit_bias(lambda h, g, d: layer(g, "fc").update(bias="branch.bias"))),
        ("conv bias 2^31-1: acc + bias beyond int32",
         edit_bias(lambda h, g, d: fill(h, d, "fc.bias", "i", (1 << 31) - 1))),
        ("global_avg_pool over 4096 x 4096 8-bit codes, multiplier 2^31-1, shift 62: sum * multiplier + rounding overflows int64", None),
    ]


def accumulator_model():
    """An otherwise valid model whose 8-bit conv can reach 255 * 127 * 70000 > 2^31."""
    sys.path.insert(0, str(HERE.parent / "python"))
    from halibit.modelfile import write_model  # noqa: E402
    c = 70000
    graph = {"name": "acc", "input": {"tensor": "image", "color": "gray", "mean": [0], "std": [1]},
             "output": {"tensor": "logits", "scale": 1.0}, "labels": [],
             "tensors": {"image": {"shape": [1, 1, 1], "type": "codes", "bits": 8},
                         "wide": {"shape": [1, 1, c], "type": "codes", "bits": 8},
                         "logits": {"shape": [1, 1, 1], "type": "int32"}},
             "layers": [{"name": "expand", "op": "conv", "inputs": ["image"], "output": "wide", "kernel": [1, 1],
                         "stride": 1, "pad": 0, "weights": {"tensor": "w1", "encoding": "signed", "bits": 8},
                         "requantize": {"multiplier": "m1", "bias": "b1", "shift": 0}},
                        {"name": "fc", "op": "conv", "inputs": ["wide"], "output": "logits", "kernel": [1, 1],
                         "stride": 1, "pad": 0, "weights": {"tensor": "w2", "encoding": "signed", "bits": 8}}]}
    tensors = {"w1": np.ones((c, 1, 1, 1), np.int8), "m1": np.ones(c, np.int32), "b1": np.zeros(c, np.int64),
               "w2": np.full((1, 1, 1, c), 127, np.int8)}
    with tempfile.TemporaryDirectory() as t:
        write_model(Path(t) / "m", graph, tensors, validate_graph=False)
        return (Path(t) / "m").read_bytes()


def pool_model():
    """An otherwise valid model whose global_avg_pool sum * multiplier can leave int64."""
    sys.path.insert(0, str(HERE.parent / "python"))
    from halibit.modelfile import write_model  # noqa: E402
    graph = {"name": "pool", "input": {"tensor": "image", "color": "gray", "mean": [0], "std": [1]},
             "output": {"tensor": "logits", "scale": 1.0}, "labels": [],
             "tensors": {"image": {"shape": [4096, 4096, 1], "type": "codes", "bits": 8},
                         "pooled": {"shape": [1, 1, 1], "type": "codes", "bits": 8},
                         "logits": {"shape": [1, 1, 1], "type": "int32"}},
             "layers": [{"name": "pool", "op": "global_avg_pool", "inputs": ["image"], "output": "pooled",
                         "multiplier": (1 << 31) - 1, "shift": 62},
                        {"name": "fc", "op": "conv", "inputs": ["pooled"], "output": "logits", "kernel": [1, 1],
                         "stride": 1, "pad": 0, "weights": {"tensor": "w", "encoding": "signed", "bits": 8}}]}
    with tempfile.TemporaryDirectory() as t:
        write_model(Path(t) / "m", graph, {"w": np.ones((1, 1, 1, 1), np.int8)}, validate_graph=False)
        return (Path(t) / "m").read_bytes()


# -- images -------------------------------------------------------------------------------------

def jpeg(img, **kw):
    b = io.BytesIO()
    img.save(b, format="JPEG", **kw)
    return b.getvalue()


def png(img, **kw):
    b = io.BytesIO()
    img.save(b, format="PNG", **kw)
    return b.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(w, h) -> bytes:
    """A valid gray PNG of w x h zeros (deflate compresses it about 1000:1)."""
    import zlib
    raw = zlib.compressobj(9)
    row = b"\x00" * (w + 1)
    data = b"".join(raw.compress(row) for _ in range(h)) + raw.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            png_chunk(b"IDAT", data) + png_chunk(b"IEND", b""))


def many_scans_jpeg(k=32) -> bytes:
    """A valid progressive gray JPEG of 1736 x 1208k pixels with the most scans a consistent
    progression allows (DC, then 63 one-coefficient bands x 14 successive-approximation scans),
    all-zero data coded as end-of-band runs."""
    bw, bh = 217, 151 * k
    n = bw * bh
    out = bytearray(b"\xff\xd8")

    def seg(marker, body):
        out.extend(struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body)

    seg(0xDB, b"\x00" + b"\x01" * 64)
    seg(0xC2, struct.pack(">BHHB", 8, bh * 8, bw * 8, 1) + b"\x01\x11\x00")
    seg(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    seg(0xC4, b"\x10" + bytes([1, 1] + [0] * 14) + b"\xe0\x00")

    def bits(pairs):
        b, acc, m = bytearray(), 0, 0
        for v, width in pairs:
            for i in range(width - 1, -1, -1):
                acc, m = (acc << 1) | ((v >> i) & 1), m + 1
                if m == 8:
                    b.append(acc)
                    if acc == 0xFF:
                        b.append(0)
                    acc, m = 0, 0
        if m:
            acc = (acc << (8 - m)) | ((1 << (8 - m)) - 1)
            b.append(acc)
            if acc == 0xFF:
                b.append(0)
        return bytes(b)

    def scan(ss, se, ah, al, data):
        seg(0xDA, bytes([1, 1, 0, ss, se, (ah << 4) | al]))
        out.extend(data)

    scan(0, 0, 0, 0, bytes(n // 8) + (bits([(0, n % 8)]) if n % 8 else b""))
    ac = bits([(0, 1), (32767 - 16384, 14)] * (n // 32767))
    for kk in range(1, 64):
        for ah, al in [(0, 13)] + [(a, a - 1) for a in range(13, 0, -1)]:
            scan(kk, kk, ah, al, ac)
    out.extend(b"\xff\xd9")
    return bytes(out)


def image_cases():
    y, x = np.mgrid[0:28, 0:28]
    gray = Image.fromarray(((x * 9 + y * 5) % 256).astype(np.uint8), "L")
    good_jpeg, good_png = jpeg(gray), png(gray)
    sof = good_jpeg.index(b"\xff\xc0")
    huge = bytearray(good_jpeg)
    struct.pack_into(">HH", huge, sof + 5, 65535, 65535)
    zero = bytearray(good_jpeg)
    struct.pack_into(">HH", zero, sof + 5, 0, 28)
    sos = good_jpeg.index(b"\xff\xda")
    garbage = bytearray(good_jpeg)
    for i in range(sos + 20, len(garbage) - 2, 7):
        garbage[i] = 0xFF if garbage[i + 1] != 0 else 0x55
    bad_crc = bytearray(good_png)
    bad_crc[-20] ^= 0xFF
    huge_png = bytearray(good_png)
    struct.pack_into(">II", huge_png, 16, 100000, 100000)
    import zlib
    struct.pack_into(">I", huge_png, 29, zlib.crc32(bytes(huge_png[12:29])))
    return [
        ("text file named .jpg", "notes.jpg", b"hello, world\n"),
        ("empty file", "empty.png", b""),
        ("JPEG cut in half", "half.jpg", good_jpeg[:len(good_jpeg) // 2]),
        ("JPEG with garbage in the entropy-coded data", "garbage.jpg", bytes(garbage)),
        ("JPEG header declares 65535 x 65535 pixels", "huge.jpg", bytes(huge)),
        ("JPEG header declares height 0", "zero.jpg", bytes(zero)),
        ("CMYK JPEG", "cmyk.jpg", jpeg(gray.convert("CMYK"))),
        ("progressive JPEG, 883 scans of 1736 x 38656 pixels (218 KB; 22 s of CPU to decode before the scan limit)",
         "scans.jpg", many_scans_jpeg()),
        ("PNG cut in half", "half.png", good_png[:len(good_png) // 2]),
        ("PNG with a bad CRC", "crc.png", bytes(bad_crc)),
        ("PNG header declares 100000 x 100000 pixels (valid CRC)", "huge.png", bytes(huge_png)),
        ("decompression bomb: valid 8192 x 8192 PNG of zeros (66 KB), within the 64 Mpixel limit", "bomb.png",
         png_bomb(8192, 8192)),
        ("decompression bomb: valid 8193 x 8192 PNG of zeros, over the limit", "bomb2.png", png_bomb(8193, 8192)),
    ]


# -- IDX ----------------------------------------------------------------------------------------

def idx_bytes(shape, data=None, kind=8):
    head = struct.pack(">BBBB", 0, 0, kind, len(shape)) + b"".join(struct.pack(">I", d) for d in shape)
    if data is None:
        data = bytes(int(np.prod(shape)))
    return head + data


def gz(b):
    return gzip.compress(b, mtime=0)


def idx_cases():
    labels = idx_bytes([2], bytes([0, 1]))
    images = idx_bytes([2, 8, 8])
    return [
        ("no IDX files in the directory", {}),
        ("images file is not IDX (bad magic)", {"images": b"\x01\x02\x08\x03" + images[4:]}),
        ("element type 0x0D (float)", {"images": idx_bytes([2, 8, 8], kind=0x0D)}),
        ("5 dimensions", {"images": struct.pack(">BBBB", 0, 0, 8, 5) + bytes(20)}),
        ("header cut after 2 of 3 sizes", {"images": images[:12]}),
        ("shape declares 2^32 x 2^32 bytes", {"images": idx_bytes([0xFFFFFFFF, 0xFFFFFFFF, 1], b"")}),
        ("data shorter than the shape", {"images": images[:-10]}),
        ("data longer than the shape", {"images": images + b"\x00"}),
        ("gzip cut in half", {"images": gz(images)[:20]}),
        ("gzip with a corrupt deflate stream", {"images": gz(images)[:10] + b"\xff" * 20 + gz(images)[30:]}),
        ("gzip bomb: 60000 x 28 x 28 declared, 40 bytes of gzip (no 47 MB allocation any more)",
         {"images": gz(idx_bytes([60000, 28, 28], b""))}),
        ("gzip data continues past the shape", {"images": gz(images + b"\x01\x02")}),
        ("3 labels for 2 images", {"labels": idx_bytes([3], bytes([0, 1, 2]))}),
        ("label 9 for a 4-class model", {"labels": idx_bytes([2], bytes([0, 9]))}),
        ("images are 28 x 28, the model takes 8 x 8", {"images": idx_bytes([2, 28, 28])}),
    ], images, labels


# -- .npy ---------------------------------------------------------------------------------------

def npy(descr, shape, data, version=1, fortran="False"):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    header += " " * ((-(10 + len(header) + 1)) % 64) + "\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode() + data


def npy_cases():
    good = npy("|u1", "(1, 8, 8, 1)", bytes(64))
    return [
        ("not a .npy file", b"PK\x03\x04" + bytes(60)),
        ("format version 4.0", good[:6] + b"\x04\x00" + good[8:]),
        ("header length past the end", good[:8] + b"\xff\xff" + good[10:]),
        ("header is not a dict", npy("|u1", "(1, 8, 8, 1)", b"").replace(b"{", b"[", 1)),
        ("big-endian int32", npy(">i4", "(1, 8, 8, 1)", bytes(256))),
        ("Fortran order", npy("|u1", "(1, 8, 8, 1)", bytes(64), fortran="True")),
        ("complex64 dtype", npy("<c8", "(1,)", bytes(8))),
        ("shape (2^62, 2^62)", npy("|u1", "(4611686018427387904, 4611686018427387904)", b"")),
        ("data shorter than the shape", npy("|u1", "(1, 8, 8, 1)", bytes(10))),
        ("int32 images", npy("<i4", "(1, 8, 8, 1)", bytes(256))),
        ("images 28 x 28 for an 8 x 8 model", npy("|u1", "(1, 28, 28, 1)", bytes(784))),
        ("zero images", npy("|u1", "(0, 8, 8, 1)", b"")),
    ]


def cpu_seconds():
    """CPU time of the finished child processes (wall time would depend on the machine's load)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# -- running ------------------------------------------------------------------------------------

def main():
    halibit = str(Path(sys.argv[1]).resolve())
    rows, problems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / GRAY).write_bytes((CORPUS / "model" / "tiny_gray_w1w2.halibit").read_bytes())

        def run(kind, what, args, limit=120, expect=1):
            t0 = cpu_seconds()
            try:
                p = subprocess.run([halibit] + args, cwd=work, capture_output=True, text=True, errors="replace",
                                   timeout=limit)
                rc, err = p.returncode, p.stderr
            except subprocess.TimeoutExpired:
                rc, err = "timeout", ""
            seconds = cpu_seconds() - t0
            lines = err.strip("\n").split("\n") if err.strip() else []
            message = lines[0] if lines else ""
            if expect == 0:
                if rc != 0 or lines:
                    problems.append(f"{kind}: {what}: exit {rc}, stderr {err[-2000:]!r}")
                message = "(no error) " + p.stdout.split("\n")[0]
            elif rc != 1 or len(lines) != 1 or not message.startswith("halibit: "):
                problems.append(f"{kind}: {what}: exit {rc}, stderr {err[-2000:]!r}")
            note = f" ({seconds:.1f} s CPU)" if seconds > 1 else ""
            rows.append(f"| {kind} | {what}{note} | `{message.replace('|', '&#124;')}` | {rc} |")

        for what, data in model_cases():
            if data is None:
                data = accumulator_model() if "accumulator" in what else pool_model()
            (work / "bad.halibit").write_bytes(data)
            run("model", what, ["info", "bad.halibit"])
        run("model", "a directory", ["info", "."])
        run("model", "missing file", ["info", "missing.halibit"])
        for what, name, data in image_cases():
            (work / name).write_bytes(data)
            run("image (classify)", what, ["classify", GRAY, name], expect=0 if "within" in what else 1)
        cases, images, labels = idx_cases()
        for what, files in cases:
            d = work / "idx"
            if d.exists():
                for f in d.iterdir():
                    f.unlink()
            else:
                d.mkdir()
            if files:
                (d / "t10k-images-idx3-ubyte.gz").write_bytes(gz(images))
                (d / "t10k-labels-idx1-ubyte.gz").write_bytes(gz(labels))
                for role, data in files.items():
                    (d / f"t10k-{role}-idx{3 if role == 'images' else 1}-ubyte.gz").unlink()
                    name = f"t10k-{role}-idx{3 if role == 'images' else 1}-ubyte" + (".gz" if data[:2] == b"\x1f\x8b" else "")
                    (d / name).write_bytes(data)
            run("IDX (eval)", what, ["eval", GRAY, "--data", "idx"])
        for what, data in npy_cases():
            (work / "bad.npy").write_bytes(data)
            run(".npy (run)", what, ["run", GRAY, "--input", "bad.npy", "--output", "out.npy"])

    print("| file | what is wrong | message | exit |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    if problems:
        print("\n".join(["", "PROBLEMS:"] + problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
