#!/usr/bin/python3
"""Writes the fuzzers' seed corpus (fuzz/corpus/<target>/): small valid files of every kind.

    /usr/bin/python3 fuzz/make_corpus.py [fuzz/corpus]

model: tiny models built with halibit.networks.Builder (every op, encoding and bit width the
loader knows, format version 2, one version 1 file and one version 3 file with int32 biases; a
few hundred bytes to a few KB, so the fuzzer runs fast) and one synthetic small_resnet (the
Fashion-MNIST shape). image: JPEG (baseline, progressive, gray, 4:2:0, restart markers) and PNG
(gray, RGB, RGBA, palette, 16-bit, 1-bit, interlaced). idx: the MNIST layout, plain and gzip.
npy: every dtype the reader accepts, format versions 1.0 to 3.0. Deterministic: the same files
every run (gzip without a time stamp).
"""
import gzip
import io
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
from halibit.modelfile import write_model
from halibit.networks import Builder, build


def models(out: Path):
    # Every op and field (as python/tests/tiny.py).
    b = Builder("tiny-every-op", [6, 5, 3], "rgb", [0.1, 0.5, 0.9], [0.2, 0.3, 0.4], ["a", "b", "c"], 0, calib_images=2)
    x = b.conv("c1", "image", 4, 3, 1, 1, encoding="signed", wbits=8, out_bits=4, pad_values=[26, 128, 230])
    x = b.conv("c2", x, 6, 3, 2, 1, groups=2, encoding="signed", wbits=4, out_bits=3)
    x = b.channel_shuffle("shuffle", x, 3)
    p = b.max_pool("pool", x, 3, 1, 1)
    r = b.conv("c3", p, 6, 1, 1, 0, groups=3, encoding="odd", wbits=2, out_bits=None)
    x = b.add("res", r, p, 2)
    y = b.conv("c4", x, 6, 3, 1, 1, encoding="binary", wbits=1, out_bits=None)
    z = b.conv("c5", x, 6, 1, 1, 0, encoding="odd", wbits=1, out_bits=None)
    x = b.add("res2", y, z, 1)
    x = b.conv("c6", x, 8, 2, 2, 1, encoding="signed", wbits=2, out_bits=5)
    x = b.conv("c7", x, 8, 1, 1, 0, encoding="codebook", wbits=2, out_bits=2, levels=[-9, -2, 3, 11])
    b.classifier(x, 3)
    write_model(out / "tiny_every_op.halibit", *b.finish())

    # Gray input (as `halibit classify` feeds Fashion-MNIST models), binary and 2-bit layers.
    b = Builder("tiny-gray", [8, 8, 1], "gray", [0.286], [0.353], [], 1, calib_images=2)
    x = b.conv("stem", "image", 8, 3, 2, 1, encoding="signed", wbits=8, out_bits=1)
    x = b.conv("b1", x, 8, 3, 1, 1, encoding="binary", wbits=1, out_bits=2)
    x = b.conv("b2", x, 8, 3, 1, 1, encoding="signed", wbits=2, out_bits=2)
    x = b.max_pool("mp", x, 2, 2, 0)
    b.classifier(x, 4)
    write_model(out / "tiny_gray_w1w2.halibit", *b.finish())

    # The smallest: 4x4 gray, one 3x3 conv, pool, fc (as tests/test_model_errors.cpp).
    b = Builder("tiny", [4, 4, 1], "gray", [0.0], [1.0], ["a", "b"], 2, calib_images=2)
    x = b.conv("conv", "image", 3, 3, 1, 0, encoding="signed", wbits=2, out_bits=2)
    b.classifier(x, 2)
    graph, tensors = b.finish()
    write_model(out / "tiny_4x4.halibit", graph, tensors)
    write_model(out / "tiny_4x4_v1.halibit", graph, tensors, version=1)  # int8 weights

    # 4-bit odd weights, 3-bit codes, 7x7 and 1x7 kernels, stride 2, depthwise groups.
    b = Builder("tiny-odd", [9, 9, 3], "rgb", [0.5] * 3, [0.25] * 3, [], 3, calib_images=2)
    x = b.conv("stem", "image", 6, 7, 2, 3, encoding="signed", wbits=8, out_bits=3)
    x = b.conv("dw", x, 6, [1, 3], 1, 1, groups=6, encoding="odd", wbits=4, out_bits=3)
    x = b.conv("pw", x, 4, 1, 1, 0, encoding="odd", wbits=3, out_bits=4)
    b.classifier(x, 2)
    write_model(out / "tiny_odd_depthwise.halibit", *b.finish())

    # Format version 3: int32 biases on a residual branch read by an add, and on the fc.
    b = Builder("tiny-bias", [6, 6, 3], "rgb", [0.5] * 3, [0.25] * 3, ["a", "b", "c"], 4, calib_images=2)
    x = b.conv("stem", "image", 4, 3, 1, 1, encoding="signed", wbits=8, out_bits=2)
    r = b.conv("branch", x, 4, 3, 1, 1, encoding="signed", wbits=2, out_bits=None, bias=True)
    x = b.add("res", r, x, 2)
    b.classifier(x, 3, bias=True)
    write_model(out / "tiny_bias_v3.halibit", *b.finish())

    # The network the Fashion-MNIST models use (88 KB: kept to one).
    write_model(out / "small_resnet_w2a2.halibit", *build("small_resnet", "w2a2", seed=0))


def images(out: Path):
    y, x = np.mgrid[0:28, 0:28]
    gray = ((x * 9 + y * 5) % 256).astype(np.uint8)
    rgb = np.stack([gray, 255 - gray, ((x * y) % 256).astype(np.uint8)], axis=-1)

    def save(name, img, **kw):
        bio = io.BytesIO()
        img.save(bio, **kw)
        (out / name).write_bytes(bio.getvalue())

    g, c = Image.fromarray(gray, "L"), Image.fromarray(rgb, "RGB")
    save("gray_28.jpg", g, format="JPEG", quality=75)
    save("rgb_28_420.jpg", c, format="JPEG", quality=60, subsampling=2)
    save("rgb_28_444.jpg", c, format="JPEG", quality=90, subsampling=0)
    save("rgb_16x9_progressive.jpg", c.resize((16, 9)), format="JPEG", quality=50, progressive=True)
    save("gray_13x7_progressive_optimized.jpg", g.resize((13, 7)), format="JPEG", progressive=True, optimize=True)
    save("cmyk_8.jpg", c.resize((8, 8)).convert("CMYK"), format="JPEG", quality=50)
    save("rgb_1x1.jpg", c.resize((1, 1)), format="JPEG")
    save("gray_28.png", g, format="PNG")
    save("rgb_20x11.png", c.resize((20, 11)), format="PNG")
    save("rgba_9.png", c.resize((9, 9)).convert("RGBA"), format="PNG")
    save("gray_alpha_7.png", g.resize((7, 7)).convert("LA"), format="PNG")
    save("palette_12.png", c.resize((12, 12)).quantize(8), format="PNG")
    save("gray16_6.png", Image.fromarray((gray[:6, :6].astype(np.uint16) * 257), "I;16"), format="PNG")
    save("bilevel_16.png", g.resize((16, 16)).convert("1"), format="PNG")
    save("rgb_10_interlaced.png", c.resize((10, 10)), format="PNG", interlace=1)


def idx(out: Path):
    rng = np.random.default_rng(6)
    images3 = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    labels = np.array([0, 9, 4], np.uint8)

    def raw(a):
        return struct.pack(">BBBB", 0, 0, 8, a.ndim) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()

    def gz(data):
        return gzip.compress(data, compresslevel=9, mtime=0)

    (out / "images-idx3-ubyte").write_bytes(raw(images3))
    (out / "labels-idx1-ubyte").write_bytes(raw(labels))
    (out / "images-idx3-ubyte.gz").write_bytes(gz(raw(images3)))
    (out / "labels-idx1-ubyte.gz").write_bytes(gz(raw(labels)))
    (out / "rgb-idx4-ubyte.gz").write_bytes(gz(raw(rng.integers(0, 256, size=(2, 3, 3, 3), dtype=np.uint8))))
    (out / "empty-idx1-ubyte").write_bytes(raw(np.zeros(0, np.uint8)))
    (out / "zeros-idx2-ubyte.gz").write_bytes(gz(raw(np.zeros((40, 50), np.uint8))))


def npy(out: Path):
    arrays = {
        "u1_image.npy": np.arange(2 * 4 * 4 * 1, dtype=np.uint8).reshape(2, 4, 4, 1),
        "i1.npy": np.array([-128, 0, 127], np.int8),
        "i4_logits.npy": np.arange(-6, 6, dtype=np.int32).reshape(2, 6),
        "i8.npy": np.array([[1 << 40, -1]], np.int64),
        "f4.npy": np.array([0.5, -1.25], np.float32),
        "f8_scalar.npy": np.array(3.0, np.float64),
        "empty.npy": np.zeros((0, 3), np.int32),
    }
    for name, a in arrays.items():
        bio = io.BytesIO()
        np.save(bio, a)
        (out / name).write_bytes(bio.getvalue())
    # Format 2.0 and 3.0 (uint32 header length; 3.0 allows utf-8 in the header).
    for version in (2, 3):
        a = np.arange(6, dtype=np.int32).reshape(3, 2)
        header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }"
        header += " " * ((-(12 + len(header) + 1)) % 64) + "\n"
        data = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(header)) + header.encode() + a.tobytes()
        (out / f"v{version}_i4.npy").write_bytes(data)


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "corpus")
    for name, make in (("model", models), ("image", images), ("idx", idx), ("npy", npy)):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        make(d)
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    print(f"corpus: {sum(1 for f in root.rglob('*') if f.is_file())} files, {total} bytes in {root}")


if __name__ == "__main__":
    main()
