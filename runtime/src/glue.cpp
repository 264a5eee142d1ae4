#include "glue.h"

#include <algorithm>

namespace halibit {
namespace {

// The loops are compiled for AVX-512 and AVX2 as well and picked at load time (GCC function
// multi-versioning); aarch64 builds use NEON as their baseline.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HALIBIT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HALIBIT_VECTOR_CLONES
#endif

int64_t round_shift(int64_t x, int shift) { return (x + (shift > 0 ? int64_t(1) << (shift - 1) : 0)) >> shift; }

template <typename A, typename B>
HALIBIT_VECTOR_CLONES void add_typed(const A* __restrict x0, const B* __restrict x1, size_t pixels, int channels,
                                     const AddParams& p, uint8_t* __restrict out) {
    const int64_t top = (1 << p.out_bits) - 1;
    const int32_t* m0 = p.multiplier[0].data();
    const int32_t* m1 = p.multiplier[1].data();
    const int64_t* b = p.bias.data();
    for (size_t i = 0; i < pixels; i++)
        for (int c = 0; c < channels; c++) {
            const size_t k = i * channels + c;
            const int64_t v = round_shift(int64_t(x0[k]) * m0[c] + int64_t(x1[k]) * m1[c] + b[c], p.shift);
            out[k] = uint8_t(std::clamp<int64_t>(v, 0, top));
        }
}

}  // namespace

void add(AddInput x0, AddInput x1, size_t pixels, int channels, const AddParams& p, uint8_t* out) {
    auto i32 = [](const void* d) { return static_cast<const int32_t*>(d); };
    auto u8 = [](const void* d) { return static_cast<const uint8_t*>(d); };
    if (x0.int32 && x1.int32) add_typed(i32(x0.data), i32(x1.data), pixels, channels, p, out);
    else if (x0.int32) add_typed(i32(x0.data), u8(x1.data), pixels, channels, p, out);
    else if (x1.int32) add_typed(u8(x0.data), i32(x1.data), pixels, channels, p, out);
    else add_typed(u8(x0.data), u8(x1.data), pixels, channels, p, out);
}

HALIBIT_VECTOR_CLONES void max_pool(const uint8_t* __restrict in, const ActivationShape& s, int kh, int kw, int stride,
                                    int pad, uint8_t* __restrict out) {
    const int oh = conv_out_size(s.h, kh, stride, pad), ow = conv_out_size(s.w, kw, stride, pad);
    for (int n = 0; n < s.n; n++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                uint8_t* __restrict o = out + ((size_t(n) * oh + oy) * ow + ox) * s.c;
                std::fill_n(o, s.c, uint8_t(0));  // codes are >= 0 and every window holds an image pixel
                for (int ky = 0; ky < kh; ky++) {
                    const int iy = oy * stride + ky - pad;
                    if (iy < 0 || iy >= s.h) continue;
                    for (int kx = 0; kx < kw; kx++) {
                        const int ix = ox * stride + kx - pad;
                        if (ix < 0 || ix >= s.w) continue;
                        const uint8_t* __restrict x = in + ((size_t(n) * s.h + iy) * s.w + ix) * s.c;
                        for (int c = 0; c < s.c; c++) o[c] = std::max(o[c], x[c]);
                    }
                }
            }
}

void global_avg_pool(const uint8_t* in, const ActivationShape& s, int64_t multiplier, int shift, int out_bits, uint8_t* out) {
    const int64_t top = (1 << out_bits) - 1;
    std::vector<int64_t> sum(s.c);
    for (int n = 0; n < s.n; n++) {
        std::fill(sum.begin(), sum.end(), 0);
        const uint8_t* x = in + size_t(n) * s.h * s.w * s.c;
        for (size_t p = 0; p < size_t(s.h) * s.w; p++)
            for (int c = 0; c < s.c; c++) sum[c] += x[p * s.c + c];
        for (int c = 0; c < s.c; c++)
            out[size_t(n) * s.c + c] = uint8_t(std::clamp<int64_t>(round_shift(sum[c] * multiplier, shift), 0, top));
    }
}

void channel_shuffle(const uint8_t* in, size_t pixels, int channels, int groups, uint8_t* out) {
    const int k = channels / groups;
    for (size_t p = 0; p < pixels; p++)
        for (int g = 0; g < groups; g++)
            for (int j = 0; j < k; j++) out[p * channels + j * groups + g] = in[p * channels + g * k + j];
}

}  // namespace halibit
