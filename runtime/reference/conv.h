// Reference quantized convolution: plain loops, int32 accumulation, exact.
#pragma once
#include <cstdint>
#include <stdexcept>

#include "tensor.h"

namespace halibit::ref {

struct ConvGeometry {
    int stride = 1;
    int pad = 0;     // same on all four sides
    int groups = 1;
};

inline int conv_out_size(int in, int kernel, int stride, int pad) { return (in + 2 * pad - kernel) / stride + 1; }

// input: NHWC integer activations (unsigned codes, or sign values -1/+1); weights: OHWI integer
// values (Cout, KH, KW, Cin/groups). Positions outside the image contribute `pad_value`
// (0 for exact zero padding, +1 for the one-padding of binary networks).
template <typename A, typename W>
Tensor4<int32_t> conv(const Tensor4<A>& input, const Tensor4<W>& weights, ConvGeometry g, int pad_value = 0) {
    const int N = input.d0, H = input.d1, Wd = input.d2, C = input.d3;
    const int Cout = weights.d0, KH = weights.d1, KW = weights.d2, Cg = weights.d3;
    if (g.groups < 1 || C % g.groups || Cout % g.groups || Cg != C / g.groups)
        throw std::invalid_argument("ref::conv: channel counts do not match groups");
    const int OH = conv_out_size(H, KH, g.stride, g.pad), OW = conv_out_size(Wd, KW, g.stride, g.pad);
    const int Cog = Cout / g.groups;
    Tensor4<int32_t> out(N, OH, OW, Cout);
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int co = 0; co < Cout; co++) {
                    const int grp = co / Cog;
                    int32_t acc = 0;
                    for (int ky = 0; ky < KH; ky++)
                        for (int kx = 0; kx < KW; kx++) {
                            const int iy = oy * g.stride + ky - g.pad, ix = ox * g.stride + kx - g.pad;
                            const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < Wd;
                            for (int c = 0; c < Cg; c++) {
                                const int32_t a = inside ? int32_t(input(n, iy, ix, grp * Cg + c)) : pad_value;
                                acc += a * int32_t(weights(co, ky, kx, c));
                            }
                        }
                    out(n, oy, ox, co) = acc;
                }
    return out;
}

}  // namespace halibit::ref
