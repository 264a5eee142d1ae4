"""A tiny model that uses every op and field of docs/model-format.md (built with halibit.networks.Builder).

bias=True: int32 biases (format version 3) on c3 (read by the add `res`), c4 (read by `res2`)
and the fc; c5 stays without one.
"""
from halibit.networks import Builder


def build_tiny(seed=0, bias=False):
    b = Builder("tiny-synthetic", [6, 5, 3], "rgb", [0.1, 0.5, 0.9], [0.2, 0.3, 0.4], ["a", "b", "c"], seed,
                calib_images=4)
    x = b.conv("c1", "image", 4, 3, 1, 1, encoding="signed", wbits=8, out_bits=4, pad_values=[26, 128, 230])
    x = b.conv("c2", x, 6, 3, 2, 1, groups=2, encoding="signed", wbits=4, out_bits=3)     # [3, 3, 6]
    x = b.channel_shuffle("shuffle", x, 3)
    p = b.max_pool("pool", x, 3, 1, 1)                                                      # [3, 3, 6]
    r = b.conv("c3", p, 6, 1, 1, 0, groups=3, encoding="odd", wbits=2, out_bits=None, bias=bias)  # int32
    x = b.add("res", r, p, 2)
    y = b.conv("c4", x, 6, 3, 1, 1, encoding="binary", wbits=1, out_bits=None, bias=bias)  # int32
    z = b.conv("c5", x, 6, 1, 1, 0, encoding="odd", wbits=1, out_bits=None)               # int32
    x = b.add("res2", y, z, 1)
    x = b.conv("c6", x, 8, 2, 2, 1, encoding="signed", wbits=2, out_bits=5)               # [2, 2, 8]
    x = b.conv("c7", x, 8, 1, 1, 0, encoding="codebook", wbits=2, out_bits=2, levels=[-9, -2, 3, 11])
    b.classifier(x, 3, bias=bias)
    return b.finish()
