// conv_u8: the 8-bit convolution path, a thin wrapper around the Halide kernels
// halibit_conv_u8_int32 / halibit_conv_u8_codes (generators/conv_u8_generator.cpp).
#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "HalideRuntime.h"
#include "kernel_args.h"
#include "dispatch.h"
#include "halibit/error.h"
#include "halibit/isa.h"
#include "halibit/kernels.h"

namespace halibit {
namespace {

// The kernel's view of the weights' shape: in the row form, a kernel_h x 1 kernel of
// row_channels channels.
int layout_kernel_w(const U8Weights& w) { return w.row_channels ? 1 : w.kernel_w; }
int layout_channels(const U8Weights& w) { return w.row_channels ? w.row_channels : w.in_channels_per_group; }
int channel_blocks(const U8Weights& w) { return (layout_channels(w) + 3) / 4; }

// The row form's largest row of taps (its pad values come from a table of this many zeros).
constexpr int kMaxRowChannels = 64;

// The narrow library takes weights up to this |w| at any codes (2 x 255 x 64 fits int16), so only
// wider ones need `data16`.
constexpr int kNarrowMaxAbsWeight = 64;

// The weights as the kernels read them: (r, c, cb, kx, ky, g), see prepare_u8_weights; channel
// blocks [b0, b0 + bn) of each tap.
Buffer<int8_t> weights_view(const U8Weights& w, int b0, int bn) {
    const int cp = w.padded_channels(), cb = channel_blocks(w), kw = layout_kernel_w(w);
    return view<int8_t>(w.data.data() + size_t(4) * cp * b0,
                        {{4, 1}, {cp, 4}, {bn, 4 * cp}, {kw, 4 * cp * cb}, {w.kernel_h, 4 * cp * cb * kw},
                         {w.groups, 4 * cp * cb * kw * w.kernel_h}});
}

// `data16` as (r, ct, cb, kx, ky, co, g), channel blocks [b0, b0 + bn); one unread tile where
// it is empty (only the AVX2 full-range library reads it).
Buffer<int16_t> weights16_view(const U8Weights& w, int b0, int bn) {
    static const int16_t kUnused[4 * kWeights16Tile] = {};  // (the kernels check the first two extents)
    if (w.data16.empty())
        return view<int16_t>(kUnused, {{4, 1}, {kWeights16Tile, 4}, {1, 0}, {1, 0}, {1, 0}, {1, 0}, {1, 0}});
    const int cp = w.padded_channels(), cb = channel_blocks(w), t = 4 * kWeights16Tile, kw = layout_kernel_w(w);
    const int tap = t * cb, tile = tap * kw * w.kernel_h;
    return view<int16_t>(w.data16.data() + size_t(t) * b0,
                         {{4, 1}, {kWeights16Tile, 4}, {bn, t}, {kw, tap}, {w.kernel_h, tap * kw},
                          {cp / kWeights16Tile, tile}, {w.groups, tile * (cp / kWeights16Tile)}});
}

void check_shapes(const ActivationShape& s, const U8Weights& w, ConvGeometry g) {
    if (s.n < 1 || s.h < 1 || s.w < 1) throw Error("conv_u8: empty input");
    if (s.c != w.in_channels_per_group * w.groups)
        throw Error("conv_u8: activations have " + std::to_string(s.c) + " channels, weights expect " +
                    std::to_string(w.in_channels_per_group * w.groups));
    if (g.stride < 1 || g.pad < 0) throw Error("conv_u8: stride must be at least 1 and padding not negative");
    const ActivationShape o = conv_output_shape(s, w, g);
    if (o.h < 1 || o.w < 1) throw Error("conv_u8: kernel, stride or padding leave no output pixels");
    const size_t size = w.depthwise ? size_t(w.out_channels) * w.kernel_w * w.kernel_h
                                    : size_t(4) * w.padded_channels() * channel_blocks(w) * layout_kernel_w(w) * w.kernel_h * w.groups;
    if (w.data.size() != size || w.sums.size() != size_t(w.out_channels) || w.row_channels > kMaxRowChannels ||
        (w.row_channels && (w.groups != 1 || w.row_channels % 4 || w.row_channels < w.kernel_w * w.in_channels_per_group)))
        throw Error("conv_u8: weights were not made by prepare_u8_weights");
}

// The narrow library's chunk: the most of `blocks` channel blocks, dividing their count, whose int16 pair
// sums stay exact (each pair sum is at most 2 x largest code x largest |w|); 0 when one pair
// sum can already overflow int16 (W8 x A8).
int narrow_chunk(const U8Weights& w, int blocks, int max_code) {
    const int64_t pair = 2 * int64_t(max_code) * w.max_abs_weight;
    if (pair > 32767) return 0;
    for (int chunk = blocks; chunk > 1; chunk--)
        if (blocks % chunk == 0 && chunk * pair <= 32767) return chunk;
    return 1;
}

// The largest value the kernel reads: a code (below 2^act_bits, checked: the narrow library
// would overflow on larger ones) or a pad value. After check_shapes (it reads s.c pad values).
int largest_code(const uint8_t* codes, const ActivationShape& s, const uint8_t* pad_values, int act_bits) {
    if (act_bits < 1 || act_bits > 8) throw Error("conv_u8: act_bits " + std::to_string(act_bits) + " is outside 1..8");
    check_codes_fit("conv_u8", codes, s, act_bits);
    const int m = (1 << act_bits) - 1;
    return pad_values ? std::max(m, int(*std::max_element(pad_values, pad_values + s.c))) : m;
}

// Reduction chunks: on x86, a layer of several taps with many input channels (and one group)
// runs as one call of the int32 library per kReductionChunk input channels, the sums added here
// and then requantized. Each call's pixel tiles then share a smaller slice of a channel tile's
// weights: at 7x7x512 (3x3) one 64-channel tile's weights (295 KB on avx512) were otherwise
// streamed from L2 by each of its 7 pixel tiles. With fewer channels (14x14x256: 28 pixel tiles
// share each weight slice) the extra passes cost more than they save, hence only from 512
// channels; and not for 1x1 kernels, whose slices are a ninth of that: ResNet-50's 1x1 layers of
// 512 to 2048 channels in chunks made the network 1.05x slower at one thread and 1.25x at two.
// arm64 keeps one call (its dot-product kernels add 128 x the whole weight sum). Nor does the
// AVX2 full-range library (`wide`): it reads its tile's weights from `data16`, contiguous, and
// ran 1.07x faster at 7x7x512 in one call than in chunks (the loop over a tap's channel blocks is
// then 4x longer).
constexpr int kReductionChunk = 128, kReductionChunkFrom = 512;

// acc += part over n sums, as a parallel loop of the kernels' thread pool (in one thread, a 1x1
// layer's many chunks left the second thread idle for most of the layer).
void add_partial_sums(int32_t* acc, const int32_t* part, size_t n) {
    struct Closure {
        int32_t* acc;
        const int32_t* part;
        size_t n;
    } c{acc, part, n};
    constexpr size_t kBlock = 16384;
    auto task = [](void*, int t, uint8_t* closure) -> int {
        const Closure& c = *reinterpret_cast<const Closure*>(closure);
        const size_t begin = size_t(t) * kBlock, end = std::min(c.n, begin + kBlock);
        for (size_t i = begin; i < end; i++) c.acc[i] += c.part[i];
        return 0;
    };
    halide_do_par_for(nullptr, task, 0, int((n + kBlock - 1) / kBlock), reinterpret_cast<uint8_t*>(&c));
}

bool use_reduction_chunks(const U8Weights& w, Kernel normal, Kernel narrow, bool wide) {
    const Isa isa = resolved_isa(Isa::automatic);
    if (isa == Isa::avx2 && wide) return false;
    return (isa == Isa::avx2 || isa == Isa::avx512) && w.groups == 1 && !w.row_channels && w.kernel_h * w.kernel_w > 1 &&
           w.in_channels_per_group >= kReductionChunkFrom && w.in_channels_per_group % kReductionChunk == 0 &&
           !kernel_overridden(normal) && !kernel_overridden(narrow);
}

// The row form's input: the image with its border of pad values, each row followed by the
// bytes a window's last row of taps reads past its last pixel (row_channels - kernel_w x C,
// zero). The kernel reads it through an overlapping view: pixel x' of row y is the
// row_channels bytes from the first byte of output x's window, x' = x, at stride x C bytes.
struct RowCopy {
    std::vector<uint8_t>* scratch = nullptr;
    int height = 0, row_bytes = 0;
};

// The arguments every call shares.
struct Call {
    const uint8_t* codes;
    ActivationShape s;
    const U8Weights& w;
    ConvGeometry geo;
    const uint8_t* pad_values;
    const Requantization& rq;
    const RowCopy* rows = nullptr;  // the row form's input (copy_rows)
};

RowCopy copy_rows(const uint8_t* codes, const ActivationShape& s, const U8Weights& w, ConvGeometry geo,
                  const uint8_t* pad_values) {
    thread_local std::vector<uint8_t> scratch;
    const int p = geo.pad, c = s.c, wp = s.w + 2 * p;
    RowCopy r{&scratch, s.h + 2 * p, wp * c + (w.row_channels - w.kernel_w * c)};
    scratch.resize(size_t(s.n) * r.height * r.row_bytes);
    std::vector<uint8_t> border(size_t(wp) * c);  // a row of pad values
    for (size_t i = 0; i < border.size(); i++) border[i] = pad_values[i % c];
    for (int n = 0; n < s.n; n++)
        for (int y = 0; y < r.height; y++) {
            uint8_t* row = scratch.data() + (size_t(n) * r.height + y) * r.row_bytes;
            const int iy = y - p;
            if (iy < 0 || iy >= s.h) {
                std::copy(border.begin(), border.end(), row);
            } else {
                std::copy(border.begin(), border.begin() + size_t(p) * c, row);
                std::copy_n(codes + (size_t(n) * s.h + iy) * s.w * c, size_t(s.w) * c, row + size_t(p) * c);
                std::copy(border.begin(), border.begin() + size_t(p) * c, row + size_t(p + s.w) * c);
            }
            std::fill(row + size_t(wp) * c, row + r.row_bytes, uint8_t(0));
        }
    return r;
}

// One kernel call over input channels [c0, c0 + cn): all of them (cn = groups x channels per
// group), or one reduction chunk (one group, c0 and cn multiples of 4).
template <typename T>
void call_conv(Kernel k, const Call& a, int c0, int cn, int32_t chunk, T* out) {
    const ActivationShape& s = a.s;
    const U8Weights& w = a.w;
    const ActivationShape o = conv_output_shape(s, w, a.geo);
    const int cog = w.out_channels_per_group();
    auto in = view<uint8_t>(a.codes + c0, {{cn, 1}, {s.w, s.c}, {s.h, s.c * s.w}, {s.n, s.c * s.w * s.h}});
    auto pads = view<uint8_t>(a.pad_values + c0, {{cn, 1}});
    int cg = cn / w.groups;
    int32_t x_stride = a.geo.stride, pad = a.geo.pad;
    if (a.rows) {
        static const uint8_t kZeros[kMaxRowChannels] = {};  // (no border left to pad)
        const RowCopy& r = *a.rows;
        in = view<uint8_t>(r.scratch->data(), {{w.row_channels, 1}, {o.w, a.geo.stride * s.c}, {r.height, r.row_bytes},
                                               {s.n, r.height * r.row_bytes}});
        pads = view<uint8_t>(kZeros, {{w.row_channels, 1}});
        cg = w.row_channels;
        x_stride = 1;
        pad = 0;
    }
    auto weights = weights_view(w, c0 / 4, (cg + 3) / 4);
    auto weights16 = weights16_view(w, c0 / 4, (cg + 3) / 4);
    // NHWC output as (c, g, p, n), p = y * width + x.
    auto output = view<T>(out, {{cog, 1}, {w.groups, cog}, {o.h * o.w, o.c}, {o.n, o.c * o.h * o.w}});
    auto multiplier = multiplier_view(a.rq);
    auto bias = bias_view(a.rq);
    auto sums = view<int32_t>(w.sums.data(), {{int(w.sums.size()), 1}});
    static const int16_t kOnes[2] = {1, 1};  // the narrow library's vpmaddwd operand
    auto ones = view<int16_t>(kOnes, {{2, 1}});
    // (A full-range library on AVX2 reads data16; prepare_u8_weights fills it where narrow_chunk
    // can be 0.)
    if (w.data16.empty() && chunk == 0 && resolved_isa(Isa::automatic) == Isa::avx2)
        throw Error("conv_u8: weights with |w| up to " + std::to_string(w.max_abs_weight) + " have no int16 copy");
    call_kernel_of<Kernel::halibit_conv_u8_int32, Kernel::halibit_conv_u8_codes, Kernel::halibit_conv_u8_narrow_int32,
                   Kernel::halibit_conv_u8_narrow_codes>(
        k, in.raw_buffer(), pads.raw_buffer(), weights.raw_buffer(), weights16.raw_buffer(), int32_t(a.geo.stride),
        x_stride, pad, multiplier.raw_buffer(), bias.raw_buffer(), int32_t(a.rq.shift), int32_t(a.rq.out_bits),
        cg % 4 == 0, chunk, sums.raw_buffer(), ones.raw_buffer(), output.raw_buffer());
}

// Runs `normal`, or `narrow` (the int16-sum library) where the codes, pad values and weights
// allow; in reduction chunks (through the int32 libraries) where those pay.
template <typename T>
void run(Kernel normal, Kernel narrow, const uint8_t* codes, const ActivationShape& s, const U8Weights& w,
         ConvGeometry geo, const uint8_t* pad_values, const Requantization& rq, T* out, int act_bits) {
    check_shapes(s, w, geo);
    const int max_code = largest_code(codes, s, pad_values, act_bits);
    std::vector<uint8_t> zeros;
    if (!pad_values) {
        zeros.assign(s.c, 0);
        pad_values = zeros.data();
    }
    const ActivationShape o = conv_output_shape(s, w, geo);
    if (w.depthwise) {
        // (c, kx, ky) weights; NHWC output as (c, x, y, n).
        auto in = view<uint8_t>(codes, {{s.c, 1}, {s.w, s.c}, {s.h, s.c * s.w}, {s.n, s.c * s.w * s.h}});
        auto pads = view<uint8_t>(pad_values, {{s.c, 1}});
        auto multiplier = multiplier_view(rq);
        auto bias = bias_view(rq);
        auto dw = view<int8_t>(w.data.data(), {{w.out_channels, 1}, {w.kernel_w, w.out_channels},
                                               {w.kernel_h, w.out_channels * w.kernel_w}});
        auto output = view<T>(out, {{o.c, 1}, {o.w, o.c}, {o.h, o.c * o.w}, {o.n, o.c * o.w * o.h}});
        constexpr Kernel k = std::is_same_v<T, int32_t> ? Kernel::halibit_depthwise_u8_int32 : Kernel::halibit_depthwise_u8_codes;
        call_kernel<k>(in.raw_buffer(), pads.raw_buffer(), dw.raw_buffer(), int32_t(geo.stride), int32_t(geo.pad),
                       multiplier.raw_buffer(), bias.raw_buffer(), int32_t(rq.shift), int32_t(rq.out_bits),
                       output.raw_buffer());
        return;
    }
    Call call{codes, s, w, geo, pad_values, rq};
    RowCopy rows;
    if (w.row_channels) {
        rows = copy_rows(codes, s, w, geo, pad_values);
        call.rows = &rows;
    }
    const int cin = w.in_channels_per_group;
    const int32_t chunk_all = narrow_chunk(w, channel_blocks(w), max_code);  // an argument of the kernel
    if (!use_reduction_chunks(w, normal, narrow, chunk_all == 0)) {
        call_conv(chunk_all ? narrow : normal, call, 0, s.c, chunk_all, out);
        return;
    }
    // The sums: in `out` itself for int32 output; the first chunk's call writes them, each
    // further one writes `part`, added in.
    const size_t n = size_t(o.n) * o.h * o.w * o.c;
    int32_t* acc;
    if constexpr (std::is_same_v<T, int32_t>)
        acc = out;
    else
        acc = sum_scratch(o);
    thread_local std::vector<int32_t> part;
    part.resize(n);
    const int32_t chunk = narrow_chunk(w, kReductionChunk / 4, max_code);
    const Kernel k = chunk ? Kernel::halibit_conv_u8_narrow_int32 : Kernel::halibit_conv_u8_int32;
    for (int c0 = 0; c0 < cin; c0 += kReductionChunk) {
        call_conv(k, call, c0, kReductionChunk, chunk, c0 == 0 ? acc : part.data());
        if (c0 > 0) add_partial_sums(acc, part.data(), n);
    }
    if constexpr (!std::is_same_v<T, int32_t>)
        requantize(Kernel::halibit_requantize_codes, acc, o, 1, rq, output_view(out, o, 1));
}

}  // namespace

// Layout (r, c, cb, kx, ky, g), r innermost: input channel 4 cb + r of output channel c of group
// g at tap (ky, kx). Input channels are padded with zeros to a multiple of 4, output channels to
// a multiple of kWeightChannelAlign (halibit/kernels.h).
U8Weights prepare_u8_weights(const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w, int cin_per_group,
                             int groups) {
    U8Weights w;
    static_cast<WeightShape&>(w) = weight_shape("conv_u8 weights", out_channels, kernel_h, kernel_w, cin_per_group, groups);
    w.sums.assign(out_channels, 0);  // each output channel's weight sum (the arm64 dot-product kernels)
    if (cin_per_group == 1 && groups == out_channels && groups > 1) {
        // Depthwise: (c, kx, ky), channels innermost.
        w.depthwise = true;
        w.data.assign(size_t(out_channels) * kernel_w * kernel_h, 0);
        for (int o = 0; o < out_channels; o++)
            for (int ky = 0; ky < kernel_h; ky++)
                for (int kx = 0; kx < kernel_w; kx++) {
                    const int8_t v = ohwi[(size_t(o) * kernel_h + ky) * kernel_w + kx];
                    w.data[o + size_t(out_channels) * (kx + size_t(kernel_w) * ky)] = v;
                    w.max_abs_weight = std::max(w.max_abs_weight, std::abs(int(v)));
                    w.sums[o] += v;
                }
        return w;
    }
    // The row form where it reads fewer padded channels (one group, Cg not a multiple of 4): the
    // weights of a row of taps, kx-major as the NHWC row holds their inputs, zero-padded.
    const int row = (kernel_w * cin_per_group + 3) / 4 * 4;
    std::vector<int8_t> rows;
    if (groups == 1 && cin_per_group % 4 && kernel_w > 1 && row <= kMaxRowChannels &&
        row < kernel_w * ((cin_per_group + 3) / 4 * 4)) {
        w.row_channels = row;
        rows.assign(size_t(out_channels) * kernel_h * row, 0);
        for (size_t oy = 0; oy < size_t(out_channels) * kernel_h; oy++)
            std::copy_n(ohwi + oy * kernel_w * cin_per_group, kernel_w * cin_per_group, rows.begin() + oy * row);
        ohwi = rows.data();
        kernel_w = 1;
        cin_per_group = row;
    }
    const int cp = w.padded_channels(), cb = channel_blocks(w), cog = out_channels / groups;
    w.data.assign(size_t(4) * cp * cb * kernel_w * kernel_h * groups, 0);
    for (int o = 0; o < out_channels; o++)
        for (int ky = 0; ky < kernel_h; ky++)
            for (int kx = 0; kx < kernel_w; kx++)
                for (int ci = 0; ci < cin_per_group; ci++) {
                    const int g = o / cog, c = o % cog;
                    const size_t idx =
                        ci % 4 + 4 * (c + size_t(cp) * (ci / 4 + size_t(cb) * (kx + size_t(kernel_w) * (ky + size_t(kernel_h) * g))));
                    w.data[idx] = ohwi[((size_t(o) * kernel_h + ky) * kernel_w + kx) * cin_per_group + ci];
                    w.max_abs_weight = std::max(w.max_abs_weight, std::abs(int(w.data[idx])));
                    w.sums[o] += w.data[idx];
                }
#if defined(__x86_64__)
    if (w.max_abs_weight > kNarrowMaxAbsWeight) {
        // (r, ct, cb, kx, ky, co, g): output channel kWeights16Tile co + ct; one tile's weights
        // for all taps are contiguous.
        w.data16.resize(w.data.size());
        const size_t taps = size_t(kernel_w) * kernel_h;
        for (size_t i = 0; i < w.data.size(); i++) {
            // i = r + 4 (c + cp (b + cb (tap + taps g)))
            const size_t r = i % 4, c = i / 4 % cp, rest = i / 4 / cp;  // rest = b + cb (tap + taps g)
            const size_t b = rest % cb, tap = rest / cb % taps, g = rest / cb / taps;
            const size_t ct = c % kWeights16Tile, co = c / kWeights16Tile;
            const size_t j = r + 4 * (ct + kWeights16Tile * (b + cb * (tap + taps * (co + size_t(cp / kWeights16Tile) * g))));
            w.data16[j] = w.data[i];
        }
    }
#endif
    return w;
}

ActivationShape conv_output_shape(const ActivationShape& in, const U8Weights& w, ConvGeometry g) {
    return {in.n, conv_out_size(in.h, w.kernel_h, g.stride, g.pad), conv_out_size(in.w, w.kernel_w, g.stride, g.pad),
            w.out_channels};
}

void conv_u8(const uint8_t* in, const ActivationShape& s, const U8Weights& w, ConvGeometry g, const uint8_t* pad_values,
             int32_t* out, int act_bits) {
    run(Kernel::halibit_conv_u8_int32, Kernel::halibit_conv_u8_narrow_int32, in, s, w, g, pad_values, no_requantization(),
        out, act_bits);
}

void conv_u8(const uint8_t* in, const ActivationShape& s, const U8Weights& w, ConvGeometry g, const uint8_t* pad_values,
             const Requantization& rq, uint8_t* out, int act_bits) {
    check_requantization(rq, w.out_channels);
    run(Kernel::halibit_conv_u8_codes, Kernel::halibit_conv_u8_narrow_codes, in, s, w, g, pad_values, rq, out, act_bits);
}

}  // namespace halibit
