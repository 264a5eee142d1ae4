// The glue ops: thin wrappers around their Halide kernels (generators/add_generator.cpp,
// max_pool_generator.cpp, global_avg_pool_generator.cpp, channel_shuffle_generator.cpp).
#include "glue.h"

#include <string>

#include "dispatch.h"
#include "kernel_args.h"

namespace halibit {

using AnyBuffer = Halide::Runtime::Buffer<void>;

void add(AddInput x0, AddInput x1, size_t pixels, int channels, const AddParams& p, uint8_t* out) {
    if (int(p.multiplier[0].size()) != channels || int(p.multiplier[1].size()) != channels ||
        int(p.bias.size()) != channels)
        throw Error("add: multipliers and bias need one entry per channel (" + std::to_string(channels) + ")");
    const int np = int(pixels);
    auto input = [&](const AddInput& x) {
        if (x.int32) return AnyBuffer(view<int32_t>(static_cast<const int32_t*>(x.data), {{channels, 1}, {np, channels}}));
        return AnyBuffer(view<uint8_t>(static_cast<const uint8_t*>(x.data), {{channels, 1}, {np, channels}}));
    };
    AnyBuffer a = input(x0), b = input(x1);
    auto m0 = view<int32_t>(p.multiplier[0].data(), {{channels, 1}});
    auto m1 = view<int32_t>(p.multiplier[1].data(), {{channels, 1}});
    auto bias = view<int64_t>(p.bias.data(), {{channels, 1}});
    auto o = view<uint8_t>(out, {{channels, 1}, {np, channels}});
    const Kernel k = x0.int32 ? (x1.int32 ? Kernel::halibit_add_int32_int32 : Kernel::halibit_add_int32_uint8)
                              : (x1.int32 ? Kernel::halibit_add_uint8_int32 : Kernel::halibit_add_uint8_uint8);
    call_kernel_of<Kernel::halibit_add_int32_int32, Kernel::halibit_add_int32_uint8, Kernel::halibit_add_uint8_int32,
                   Kernel::halibit_add_uint8_uint8>(k, a.raw_buffer(), b.raw_buffer(), m0.raw_buffer(), m1.raw_buffer(),
                                                    bias.raw_buffer(), int32_t(p.shift), int32_t(p.out_bits),
                                                    o.raw_buffer());
}

void max_pool(const uint8_t* in, const ActivationShape& s, int kernel_h, int kernel_w, int stride, int pad, uint8_t* out) {
    if (kernel_h < 1 || kernel_w < 1 || stride < 1 || pad < 0 || pad >= kernel_h || pad >= kernel_w)
        throw Error("max_pool: kernel and stride must be at least 1 and padding below the kernel");
    const int oh = conv_out_size(s.h, kernel_h, stride, pad), ow = conv_out_size(s.w, kernel_w, stride, pad);
    if (oh < 1 || ow < 1) throw Error("max_pool: kernel, stride or padding leave no output pixels");
    auto i = view<uint8_t>(in, {{s.c, 1}, {s.w, s.c}, {s.h, s.c * s.w}, {s.n, s.c * s.w * s.h}});
    auto o = view<uint8_t>(out, {{s.c, 1}, {ow, s.c}, {oh, s.c * ow}, {s.n, s.c * ow * oh}});
    call_kernel<Kernel::halibit_max_pool>(i.raw_buffer(), int32_t(kernel_w), int32_t(kernel_h), int32_t(stride),
                                          int32_t(pad), o.raw_buffer());
}

void global_avg_pool(const uint8_t* in, const ActivationShape& s, int64_t multiplier, int shift, int out_bits, uint8_t* out) {
    auto i = view<uint8_t>(in, {{s.c, 1}, {s.w, s.c}, {s.h, s.c * s.w}, {s.n, s.c * s.w * s.h}});
    auto o = view<uint8_t>(out, {{s.c, 1}, {s.n, s.c}});
    call_kernel<Kernel::halibit_global_avg_pool>(i.raw_buffer(), multiplier, int32_t(shift), int32_t(out_bits),
                                                 o.raw_buffer());
}

void channel_shuffle(const uint8_t* in, size_t pixels, int channels, int groups, uint8_t* out) {
    if (groups < 1 || channels % groups) throw Error("channel_shuffle: channels not divisible by groups");
    auto i = view<uint8_t>(in, {{channels, 1}, {int(pixels), channels}});
    auto o = view<uint8_t>(out, {{channels, 1}, {int(pixels), channels}});
    call_kernel<Kernel::halibit_channel_shuffle>(i.raw_buffer(), int32_t(groups), o.raw_buffer());
}

}  // namespace halibit
