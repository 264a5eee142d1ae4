// Thin wrappers that describe packed tensors to the Halide kernels as strided buffers.
#include "halibit/kernels.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "kernel_args.h"
#include "halibit/error.h"
#include "dispatch.h"
#include "halibit/isa.h"
#include "kernel_choice.h"

namespace halibit {
namespace {

// Packed activations as 64-bit words (k, j, g, x, y, n), x and y from -pad: the image and `pad`
// pixels of its zero border.
Buffer<uint64_t> words_view(const PackedActivations& a, int pad) {
    const int k = a.words(), j = a.planes, g = a.groups;
    std::vector<halide_dimension_t> d = {{0, k, 1},
                                         {0, j, k},
                                         {0, g, k * j},
                                         {-pad, a.shape.w + 2 * pad, int(a.pixel_words())},
                                         {-pad, a.shape.h + 2 * pad, int(a.row_words())},
                                         {0, a.shape.n, int(a.image_words())}};
    return Buffer<uint64_t>(const_cast<uint64_t*>(a.data() + a.offset(0, -pad, -pad)), int(d.size()), d.data());
}

// The image part of packed activations as bytes (kb, j, g, x, y, n): what producers write.
Buffer<uint8_t> bytes_view(PackedActivations& a) {
    const int kb = 8 * a.words(), j = a.planes, g = a.groups;
    return view<uint8_t>(reinterpret_cast<uint8_t*>(a.data() + a.offset(0, 0, 0)),
                         {{kb, 1}, {j, kb}, {g, kb * j}, {a.shape.w, 8 * int(a.pixel_words())},
                          {a.shape.h, 8 * int(a.row_words())}, {a.shape.n, 8 * int(a.image_words())}});
}

Buffer<uint64_t> weights_view(const PackedWeights& w) {
    const int c = w.padded_channels(), k = w.words(), i = w.bits;
    return view<uint64_t>(w.words_data.data(), {{c, 1}, {k, c}, {i, c * k}, {w.kernel_w, c * k * i},
                                                {w.kernel_h, c * k * i * w.kernel_w},
                                                {w.groups, c * k * i * w.kernel_w * w.kernel_h}});
}

void check_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g) {
    if (in.groups != w.groups || in.channels_per_group() != w.in_channels_per_group)
        throw Error("convolution: activations have " + std::to_string(in.shape.c) + " channels in " +
                    std::to_string(in.groups) + " groups, weights expect " +
                    std::to_string(w.in_channels_per_group * w.groups) + " in " + std::to_string(w.groups));
    if (g.pad > in.border)
        throw Error("convolution: padding " + std::to_string(g.pad) + " needs activations packed with a border of at least " +
                    std::to_string(g.pad) + " (they have " + std::to_string(in.border) + ")");
    if (g.stride < 1 || g.pad < 0 || conv_out_size(in.shape.h, w.kernel_h, g.stride, g.pad) < 1 ||
        conv_out_size(in.shape.w, w.kernel_w, g.stride, g.pad) < 1)
        throw Error("convolution: kernel, stride or padding leave no output pixels");
}

}  // namespace

void PackedActivations::resize(const ActivationShape& s, int p, int g, int b) {
    if (g < 1 || s.c % g) throw Error("packed activations: " + std::to_string(s.c) + " channels do not split into " + std::to_string(g) + " groups");
    if (b < 0) throw Error("packed activations: negative border");
    if (storage) {
        if (shape.n != s.n || shape.h != s.h || shape.w != s.w || shape.c != s.c || planes != p || groups != g || border != b)
            throw Error("packed activations: a kernel's output layout does not match the placed storage");
        return;
    }
    const bool same = shape.n == s.n && shape.h == s.h && shape.w == s.w && shape.c == s.c && planes == p && groups == g &&
                      border == b && !words_data.empty();
    shape = s;
    planes = p;
    groups = g;
    border = b;
    // Kernels write the image only; the border must be zero, so a new layout starts from zeros.
    if (!same) words_data.assign(size_t(s.n) * image_words(), 0);
}

void PackedActivations::place(const ActivationShape& s, int p, int g, int b, uint64_t* words) {
    words_data.clear();
    storage = nullptr;
    shape = s;
    planes = p;
    groups = g;
    border = b;
    storage = words;
    std::fill(words, words + total_words(), uint64_t(0));
}

WeightShape weight_shape(const char* what, int out_channels, int kernel_h, int kernel_w, int cin_per_group, int groups) {
    if (groups < 1 || out_channels < 1 || out_channels % groups)
        throw Error(std::string(what) + ": out_channels not divisible by groups");
    if (kernel_h < 1 || kernel_w < 1 || cin_per_group < 1) throw Error(std::string(what) + ": empty kernel");
    return {out_channels, kernel_h, kernel_w, cin_per_group, groups};
}

int conv_out_size(int in, int kernel, int stride, int pad) { return (in + 2 * pad - kernel) / stride + 1; }

ActivationShape conv_output_shape(const PackedActivations& in, const PackedWeights& w, ConvGeometry g) {
    return {in.shape.n, conv_out_size(in.shape.h, w.kernel_h, g.stride, g.pad),
            conv_out_size(in.shape.w, w.kernel_w, g.stride, g.pad), w.out_channels};
}

namespace {

// The planes of `p` (its shape, encoding and bits set) from the weights' plane bits:
// plane_bits(value, o, ky, kx, ci) gives bit i of the weight's planes at bit i.
template <typename PlaneBits>
void pack_planes(PackedWeights& p, const int8_t* ohwi, PlaneBits plane_bits) {
    const int cp = p.padded_channels(), words = p.words(), cog = p.out_channels_per_group(), bits = p.bits;
    const int kernel_h = p.kernel_h, kernel_w = p.kernel_w, cin_per_group = p.in_channels_per_group;
    p.words_data.assign(size_t(cp) * words * bits * kernel_w * kernel_h * p.groups, 0);
    for (int o = 0; o < p.out_channels; o++)
        for (int ky = 0; ky < kernel_h; ky++)
            for (int kx = 0; kx < kernel_w; kx++)
                for (int ci = 0; ci < cin_per_group; ci++) {
                    const int w = ohwi[((size_t(o) * kernel_h + ky) * kernel_w + kx) * cin_per_group + ci];
                    const uint32_t code = plane_bits(w, o, ky, kx, ci);
                    const int g = o / cog, c = o % cog, k = ci / 64;
                    for (int i = 0; i < bits; i++) {
                        size_t idx = c + size_t(cp) * (k + size_t(words) * (i + size_t(bits) * (kx + size_t(kernel_w) * (ky + size_t(kernel_h) * g))));
                        p.words_data[idx] |= uint64_t((code >> i) & 1u) << (ci % 64);
                    }
                }
    // (c, k, i, tap) words to (c % 64, i, m, k, tap, c / 64) nibbles; `tap` runs over (kx, ky, g).
    p.nibbles.assign(p.words_data.size() * 16, 0);
    const size_t taps = size_t(kernel_w) * kernel_h * p.groups, block = p.nibble_block_bytes();
    for (size_t tap = 0; tap < taps; tap++)
        for (int k = 0; k < words; k++)
            for (int i = 0; i < bits; i++)
                for (int c = 0; c < cp; c++) {
                    const uint64_t word = p.words_data[c + size_t(cp) * (k + size_t(words) * (i + bits * tap))];
                    uint8_t* row = &p.nibbles[(c / kWeightChannelAlign) * block + c % kWeightChannelAlign];
                    for (int m = 0; m < 16; m++)
                        row[kWeightChannelAlign * (i + size_t(bits) * (m + 16 * (k + size_t(words) * tap)))] =
                            uint8_t((word >> (4 * m)) & 15);
                }
}

std::string weight_position(int o, int ky, int kx, int ci) {
    return "[" + std::to_string(o) + "," + std::to_string(ky) + "," + std::to_string(kx) + "," + std::to_string(ci) + "]";
}

}  // namespace

PackedWeights pack_weights(const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w, int cin_per_group, int groups,
                           WeightEncoding encoding, int bits) {
    if (!encoding_is_fixed(encoding))
        throw Error("weights: codebook weights have no fixed bit planes (pack_codebook_weights, "
                    "prepare_lut_codebook_weights or conv_u8 run them)");
    if (!encoding_supports_bits(encoding, bits))
        throw Error(std::string("weights: encoding ") + encoding_name(encoding) + " does not support " + std::to_string(bits) + " bits");
    PackedWeights p;
    static_cast<WeightShape&>(p) = weight_shape("weights", out_channels, kernel_h, kernel_w, cin_per_group, groups);
    p.encoding = encoding;
    p.bits = bits;
    for (int i = 0; i < bits; i++) p.coefficients.push_back(plane_coefficient(encoding, bits, i));
    p.activation_offset = activation_offset(encoding, bits);
    pack_planes(p, ohwi, [&](int w, int o, int ky, int kx, int ci) {
        if (!encoding_contains(encoding, bits, w))
            throw Error("weights: value " + std::to_string(w) + " at " + weight_position(o, ky, kx, ci) + " is not a " +
                        std::to_string(bits) + "-bit " + encoding_name(encoding) + " weight");
        return encode_weight(encoding, bits, w);
    });
    return p;
}

PackedWeights pack_codebook_weights(const int8_t* ohwi, int out_channels, int kernel_h, int kernel_w, int cin_per_group,
                                    int groups, const std::vector<int>& levels) {
    if (levels.size() != 2 && levels.size() != 4)
        throw Error("weights: codebook planes take 2 or 4 levels, not " + std::to_string(levels.size()));
    PackedWeights p;
    static_cast<WeightShape&>(p) = weight_shape("weights", out_channels, kernel_h, kernel_w, cin_per_group, groups);
    p.encoding = WeightEncoding::codebook;
    const int l0 = levels[0];
    p.activation_offset = l0;
    p.coefficients = {levels[1] - l0};
    if (levels.size() == 4) {
        p.coefficients.push_back(levels[2] - l0);
        const int both = levels[3] - levels[2] - levels[1] + l0;
        if (both != 0) p.coefficients.push_back(both);
    }
    p.bits = int(p.coefficients.size());
    pack_planes(p, ohwi, [&](int w, int o, int ky, int kx, int ci) {
        const auto at = std::find(levels.begin(), levels.end(), w);
        if (at == levels.end())
            throw Error("weights: value " + std::to_string(w) + " at " + weight_position(o, ky, kx, ci) +
                        " is not one of the codebook's levels");
        const uint32_t u = uint32_t(at - levels.begin());
        return u | ((u & (u >> 1) & 1u) << 2);  // b0, b1, b0 b1 (the third plane, where kept)
    });
    return p;
}

void pack_activations(const uint8_t* codes, const ActivationShape& s, int planes, int groups, PackedActivations& out,
                      int border) {
    out.resize(s, planes, groups, border);
    auto in = view<uint8_t>(codes, {{s.c, 1}, {s.w, s.c}, {s.h, s.c * s.w}, {s.n, s.c * s.w * s.h}});
    // The same codes eight to a word, read when each group's channel count is a multiple of 8.
    static const uint64_t unused = 0;
    bool whole_words = (s.c / groups) % 8 == 0;
    const int cw = s.c / 8;
    auto words = whole_words ? view<uint64_t>(reinterpret_cast<const uint64_t*>(codes),
                                              {{cw, 1}, {s.w, cw}, {s.h, cw * s.w}, {s.n, cw * s.w * s.h}})
                             : view<uint64_t>(&unused, {{1, 1}, {s.w, 0}, {s.h, 0}, {s.n, 0}});  // never read
    auto o = bytes_view(out);
    const bool whole_planes = (s.c / groups) % 64 == 0;
    call_kernel<Kernel::halibit_pack>(in.raw_buffer(), words.raw_buffer(), int32_t(groups), whole_words, whole_planes,
                                      o.raw_buffer());
}

namespace {

std::atomic<bool> g_popcount_forced{false};

// Whether the table kernels (generators/table_conv_generator.cpp) run this convolution
// (choose_bitserial_kernel). Never for the autoscheduler baseline nor a schedule experiment's
// variant, which are benchmarked as themselves, nor while the tests force the popcount kernels.
// Codebook planes run on the table kernels only (halibit::Error where they cannot).
bool use_tables(const PackedActivations& in, const PackedWeights& w, Kernel k, bool bconv) {
    const int taps = w.kernel_h * w.kernel_w;
    const int64_t window = int64_t(w.in_channels_per_group) * taps;
    const Isa isa = resolved_isa(Isa::automatic);
    const bool tables_barred = k == Kernel::halibit_bitserial_conv_auto || kernel_overridden(k) || g_popcount_forced;
    if (w.encoding == WeightEncoding::codebook) {
        // (W = 2 for the check: the planes' count is not the codebook's width, and both widths take them.)
        std::string refusal = codebook_tables_refusal(isa, 2, window, in.planes);
        if (refusal.empty() && tables_barred)
            refusal = "the call runs the autoscheduler baseline, a schedule variant or the popcount kernels, none of which "
                      "takes codebooks";
        if (!refusal.empty()) throw Error("bitserial_conv: codebook weights: " + refusal);
        return true;
    }
    return !tables_barred &&
           choose_bitserial_kernel(isa, bconv, w.bits, taps, window, in.planes) == BitserialKernel::table;
}

// Where a table kernel writes: int32 accumulators, NHWC, as halibit_bconv_int32 /
// halibit_bitserial_conv_int32 compute them; or, with `rq`, the codes of that output stage, NHWC
// (rq->out_bits <= kTableMaxCodeBits: the kernel compares each sum with per-channel thresholds).
struct TableOutput {
    int32_t* sums = nullptr;
    const Requantization* rq = nullptr;
    uint8_t* codes = nullptr;
};
constexpr int kTableMaxCodeBits = 4;

// Runs `table` (a TableOutput, NHWC, of output shape s) into `out`: directly for an int32 output
// and for codes of up to kTableMaxCodeBits, else into scratch and then through the requantize
// kernel (wider codes, packed).
template <typename T, typename TableKernel>
void run_table(TableKernel table, const ActivationShape& s, int groups, const Requantization& rq, Buffer<T> out) {
    if constexpr (std::is_same_v<T, int32_t>) {
        table(TableOutput{out.data()});
    } else {
        if (out.dimensions() == 5 && rq.out_bits <= kTableMaxCodeBits) return table(TableOutput{nullptr, &rq, out.data()});
        int32_t* acc = sum_scratch(s);
        table(TableOutput{acc});
        // Codes are (c, g, x, y, n); packed bytes have a plane dimension more.
        requantize(out.dimensions() == 5 ? Kernel::halibit_requantize_codes : Kernel::halibit_requantize_packed, acc,
                   s, groups, rq, out);
    }
}

// The table kernels in Halide (generators/table_conv_generator.cpp): int32 sums, or codes of up
// to kTableMaxCodeBits, NHWC.
Kernel table_conv_kernel(int bits, bool codes) {
    static const Kernel kernels[4][2] = {
        {Kernel::halibit_table_conv_w1_int32, Kernel::halibit_table_conv_w1_codes},
        {Kernel::halibit_table_conv_w2_int32, Kernel::halibit_table_conv_w2_codes},
        {Kernel::halibit_table_conv_w3_int32, Kernel::halibit_table_conv_w3_codes},
        {Kernel::halibit_table_conv_w4_int32, Kernel::halibit_table_conv_w4_codes}};
    return kernels[bits - 1][codes ? 1 : 0];
}
template <typename... Args>
void call_table_conv(Kernel k, Args... args) {
    call_kernel_of<Kernel::halibit_table_conv_w1_int32, Kernel::halibit_table_conv_w1_codes,
                   Kernel::halibit_table_conv_w2_int32, Kernel::halibit_table_conv_w2_codes,
                   Kernel::halibit_table_conv_w3_int32, Kernel::halibit_table_conv_w3_codes,
                   Kernel::halibit_table_conv_w4_int32, Kernel::halibit_table_conv_w4_codes>(k, args...);
}

void table_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry geo, bool bconv, bool zero_padding,
                TableOutput out) {
    if (w.bits < 1 || w.bits > 4 || in.planes < 1 || in.planes > 4)
        throw Error("table_conv: " + std::to_string(w.bits) + "-bit weights and " + std::to_string(in.planes) +
                    "-bit activations; the table kernels take 1 to 4 bits of each");
    const ActivationShape o = conv_output_shape(in, w, geo);
    const int cog = w.out_channels_per_group(), taps = w.kernel_h * w.kernel_w;
    auto input = words_view(in, geo.pad);
    auto weights = view<uint8_t>(w.nibbles.data(), {{kWeightChannelAlign, 1},
                                                     {w.bits, kWeightChannelAlign},
                                                     {16, kWeightChannelAlign * w.bits},
                                                     {w.words() * taps, kWeightChannelAlign * w.bits * 16},
                                                     {w.groups, int(w.nibble_block_bytes()) / w.groups},
                                                     {w.padded_channels() / kWeightChannelAlign, int(w.nibble_block_bytes())}});
    int32_t coefficients[4];
    for (int i = 0; i < w.bits; i++) coefficients[i] = bconv ? -2 : w.coefficients[i];
    auto coef = view<int32_t>(coefficients, {{w.bits, 1}});
    const int32_t flush_class = bconv || in.planes == 1 ? 0 : in.planes == 2 ? 1 : 2;
    const int32_t offset = bconv ? 0 : w.activation_offset;
    const Requantization& rq = out.codes ? *out.rq : no_requantization();
    auto multiplier = multiplier_view(rq);
    auto bias = bias_view(rq);
    const int pixels = o.h * o.w;
    auto sums = view<int32_t>(out.sums, {{cog, 1}, {w.groups, cog}, {pixels, o.c}, {o.n, o.c * pixels}});
    auto codes = view<uint8_t>(out.codes, {{cog, 1}, {w.groups, cog}, {pixels, o.c}, {o.n, o.c * pixels}});
    call_table_conv(table_conv_kernel(w.bits, out.codes != nullptr), input.raw_buffer(), weights.raw_buffer(),
                    int32_t(w.kernel_w), int32_t(w.kernel_h), coef.raw_buffer(), flush_class, offset, bconv, zero_padding,
                    int32_t(w.in_channels_per_group), int32_t(geo.stride), int32_t(geo.pad), multiplier.raw_buffer(),
                    bias.raw_buffer(), int32_t(rq.shift), int32_t(rq.out_bits),
                    out.codes ? codes.raw_buffer() : sums.raw_buffer());
}

template <typename T>
void run_bitserial(Kernel k, const PackedActivations& in, const PackedWeights& w, ConvGeometry g, const Requantization& rq,
                   Buffer<T> out) {
    check_conv(in, w, g);
    if (use_tables(in, w, k, false))
        return run_table([&](TableOutput o) { table_conv(in, w, g, false, true, o); }, conv_output_shape(in, w, g),
                         w.groups, rq, out);
    auto input = words_view(in, g.pad);
    auto weights = weights_view(w);
    auto multiplier = multiplier_view(rq);
    auto bias = bias_view(rq);
    const bool w2a2_signed = w.bits == 2 && in.planes == 2 && w.encoding == WeightEncoding::signed_;
    call_kernel_of<Kernel::halibit_bitserial_conv_int32, Kernel::halibit_bitserial_conv_codes,
                   Kernel::halibit_bitserial_conv_packed, Kernel::halibit_bitserial_conv_auto>(
        k, input.raw_buffer(), weights.raw_buffer(), int32_t(g.stride), int32_t(g.pad), multiplier.raw_buffer(),
        bias.raw_buffer(), int32_t(rq.shift), int32_t(rq.out_bits), int32_t(w.bits), int32_t(in.planes),
        int32_t(w.encoding), w2a2_signed, out.raw_buffer());
}

template <typename T>
void run_bconv(Kernel k, const PackedActivations& in, const PackedWeights& w, BConvOptions o, const Requantization& rq,
               Buffer<T> out) {
    check_conv(in, w, o.geometry);
    if (in.planes != 1 || w.encoding != WeightEncoding::binary || w.bits != 1)
        throw Error("bconv: needs one-plane sign activations and 1-bit binary weights");
    if (use_tables(in, w, k, true))
        return run_table([&](TableOutput t) { table_conv(in, w, o.geometry, true, !o.one_padding, t); },
                         conv_output_shape(in, w, o.geometry), w.groups, rq, out);
    auto input = words_view(in, o.geometry.pad);
    auto weights = weights_view(w);
    auto multiplier = multiplier_view(rq);
    auto bias = bias_view(rq);
    call_kernel_of<Kernel::halibit_bconv_int32, Kernel::halibit_bconv_codes, Kernel::halibit_bconv_packed>(
        k, input.raw_buffer(), weights.raw_buffer(), int32_t(o.geometry.stride), int32_t(o.geometry.pad),
        multiplier.raw_buffer(), bias.raw_buffer(), int32_t(rq.shift), int32_t(rq.out_bits),
        int32_t(w.in_channels_per_group), !o.one_padding, out.raw_buffer());
}

}  // namespace

void force_popcount_kernels(bool on) { g_popcount_forced = on; }

void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, int32_t* out) {
    run_bitserial(Kernel::halibit_bitserial_conv_int32, in, w, g, no_requantization(),
                  output_view(out, conv_output_shape(in, w, g), w.groups));
}

void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, const Requantization& rq,
                    uint8_t* out, Schedule schedule) {
    check_requantization(rq, w.out_channels);
    const Kernel k = schedule == Schedule::tuned ? Kernel::halibit_bitserial_conv_codes : Kernel::halibit_bitserial_conv_auto;
    run_bitserial(k, in, w, g, rq, output_view(out, conv_output_shape(in, w, g), w.groups));
}

void bitserial_conv(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, const Requantization& rq,
                    PackedActivations& out, int out_border) {
    check_requantization(rq, w.out_channels);
    out.resize(conv_output_shape(in, w, g), rq.out_bits, w.groups, out_border);
    run_bitserial(Kernel::halibit_bitserial_conv_packed, in, w, g, rq, bytes_view(out));
}

void bconv(const PackedActivations& in, const PackedWeights& w, BConvOptions o, int32_t* out) {
    run_bconv(Kernel::halibit_bconv_int32, in, w, o, no_requantization(),
              output_view(out, conv_output_shape(in, w, o.geometry), w.groups));
}

void bconv(const PackedActivations& in, const PackedWeights& w, BConvOptions o, const Requantization& rq, uint8_t* out) {
    check_requantization(rq, w.out_channels);
    run_bconv(Kernel::halibit_bconv_codes, in, w, o, rq, output_view(out, conv_output_shape(in, w, o.geometry), w.groups));
}

void bconv(const PackedActivations& in, const PackedWeights& w, BConvOptions o, const Requantization& rq,
           PackedActivations& out, int out_border) {
    check_requantization(rq, w.out_channels);
    out.resize(conv_output_shape(in, w, o.geometry), rq.out_bits, w.groups, out_border);
    run_bconv(Kernel::halibit_bconv_packed, in, w, o, rq, bytes_view(out));
}

}  // namespace halibit
