// The output pixels of conv_u8 and lut_conv are one flattened dimension p = y * out_width + x, so
// that register tiles of pixels run across row ends; a tile past the last pixel recomputes it.
#pragma once
#include "Halide.h"

namespace halibit {

using namespace Halide;

struct FlattenedWindow {
    Func window;  // (p) -> the window origin, a table computed once per call (tuned schedules)
    Expr x, y;    // the origin of pixel p, clamped to the padded image so that Halide can bound
                  // the reads through it
};

// The window origin of each output pixel, rather than a division per pixel of every register tile.
// stride_x and stride_y are the layer's stride, except for conv_u8's row form (runtime/src/conv_u8.cpp),
// whose input view steps one window per x.
inline FlattenedWindow flattened_window(Var p, Expr in_w, Expr in_h, Expr kw, Expr kh, Expr stride_x, Expr stride_y,
                                        Expr pad) {
    Expr out_w = (in_w + 2 * pad - kw) / stride_x + 1;
    Expr out_h = (in_h + 2 * pad - kh) / stride_y + 1;
    Expr pp = min(p, out_w * out_h - 1);
    FlattenedWindow f;
    f.window = Func("window");
    f.window(p) = Tuple((pp % out_w) * stride_x - pad, (pp / out_w) * stride_y - pad);
    f.x = clamp(f.window(p)[0], -pad, in_w + pad - kw);
    f.y = clamp(f.window(p)[1], -pad, in_h + pad - kh);
    return f;
}

}  // namespace halibit
