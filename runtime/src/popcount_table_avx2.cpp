// AVX2 table kernels (popcount_table.h). Compiled with -mavx2 (16 ymm registers), and again as
// popcount_table_avx512.cpp with AVX-512 BW (32 zmm registers, HALIBIT_TABLE_ZMM); each only
// called when the CPU has it.
//
// Per step (one nibble m = 4 input channels of one word, one tap) and output pixel:
//   T = the 16-byte table chosen by the activation nibble, broadcast to every 128-bit lane
//   acc8[i][v] += vpshufb(T, weight nibbles of plane i for 32 (ymm) or 64 (zmm) output channels)
// so one shuffle and one add count 4 channels x 32 or 64 outputs. bconv's tables are
// popcount(a ^ w). bitserial's are activation-side tables (T-MAC): one lookup covers two
// activation planes j = 2l, 2l + 1 at once, T[w] = 4^l (popcount(a_2l & w) + 2 popcount(a_2l+1 & w)),
// the sum of those planes' codes over the channels that w selects; so A2 needs one lookup per
// weight plane, A3 and A4 two. Summed over the window that is S_i = sum of w_i-bit x code, the
// sum the Halide kernel builds from popcount(w_i & a_j). Byte accumulators are flushed into
// 16-bit ones (even and odd bytes apart) before they can overflow; the epilogue applies the
// encoding's coefficients.
#include <immintrin.h>

#include <HalideRuntime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "halibit/encoding.h"
#include "popcount_table.h"

#ifndef HALIBIT_TABLE_ZMM
#define HALIBIT_TABLE_ZMM 0
#endif

namespace halibit {
namespace {

// The vector operations of the loop, by name: ymm for AVX2, zmm for AVX-512.
#if HALIBIT_TABLE_ZMM
struct Vec {
    using V = __m512i;
    static constexpr int kBytes = 64;
    static V zero() { return _mm512_setzero_si512(); }
    static V load(const void* p) { return _mm512_loadu_si512(p); }
    static void store(void* p, V v) { _mm512_storeu_si512(p, v); }
    static V table(const void* p) { return _mm512_broadcast_i32x4(_mm_load_si128(static_cast<const __m128i*>(p))); }
    static V lookup(V t, V i) { return _mm512_shuffle_epi8(t, i); }
    static V add8(V a, V b) { return _mm512_add_epi8(a, b); }
    static V add16(V a, V b) { return _mm512_add_epi16(a, b); }
    static V even(V a) { return _mm512_and_si512(a, _mm512_set1_epi16(0x00ff)); }
    static V odd(V a) { return _mm512_srli_epi16(a, 8); }
    // One zmm holds a whole 64-channel block of the nibbles. Pixels per tile: pixels x planes
    // accumulators, the weight vectors, a table and a result within the 32 registers, less what
    // GCC keeps for itself: W2 at 12 pixels (24 accumulators) spilled, and 8, 10 and 12 pixels ran
    // within noise of each other on Zen 5 while the epilogue was inlined; since it is not, W2 at 8
    // ran 1.02x of 10 (no accumulator spilled; three alternating runs). W1 at 24 pixels was slower
    // than 12 or 16.
    static constexpr int vectors(int) { return 1; }
    static constexpr int pixels(int bits) { return bits == 1 ? 16 : bits == 2 ? 8 : bits == 3 ? 8 : 5; }
    static constexpr int kBlockPixels = 80;  // tasks: a multiple of every tile's pixels
};
#else
struct Vec {
    using V = __m256i;
    static constexpr int kBytes = 32;
    static V zero() { return _mm256_setzero_si256(); }
    static V load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
    static void store(void* p, V v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
    static V table(const void* p) { return _mm256_broadcastsi128_si256(_mm_load_si128(static_cast<const __m128i*>(p))); }
    static V lookup(V t, V i) { return _mm256_shuffle_epi8(t, i); }
    static V add8(V a, V b) { return _mm256_add_epi8(a, b); }
    static V add16(V a, V b) { return _mm256_add_epi16(a, b); }
    static V even(V a) { return _mm256_and_si256(a, _mm256_set1_epi16(0x00ff)); }
    static V odd(V a) { return _mm256_srli_epi16(a, 8); }
    // Output-channel vectors and pixels per tile, by weight planes: the byte accumulators
    // (pixels x planes x vectors), the weight vectors (planes x vectors), a table and a shuffle
    // result fill the 16 ymm registers (more spills the accumulators: measured slower). W1 and W2
    // take 64 channels (6 and 2 pixels); W3 and W4 32 channels, so that 3 and 2 pixels share each
    // weight load: W4A4 1.5x faster than 64 channels x 1 pixel, while W2 at 32 channels x 5
    // pixels was 3% slower than 64 x 2 (docs/kernels.md).
    static constexpr int vectors(int bits) { return bits <= 2 ? 2 : 1; }
    static constexpr int pixels(int bits) { return bits == 1 ? 6 : bits == 2 ? 2 : bits == 3 ? 3 : 2; }
    static constexpr int kBlockPixels = 48;  // tasks: a multiple of every tile's pixels
};
#endif

// Activation planes per bitserial lookup, and lookups per step (A <= 4).
constexpr int kPlanesPerLookup = 2, kMaxLookups = 2;

// Steps (nibbles of a word) between flush checks; divides the 16 nibbles of a word.
constexpr int kStepGroup = 4;

// tables[t][w]: bconv t = 0..15: popcount(t ^ w); bitserial t = bitserial_table(l, lo, hi):
// 4^l (popcount(lo & w) + 2 popcount(hi & w)) for the nibbles lo, hi of planes 2l, 2l + 1.
constexpr int bitserial_table(int l, int lo, int hi) { return 16 + 256 * l + 16 * hi + lo; }
struct Tables {
    alignas(64) uint8_t t[bitserial_table(kMaxLookups, 0, 0)][16];
    Tables() {
        for (int w = 0; w < 16; w++) {
            for (int a = 0; a < 16; a++) t[a][w] = uint8_t(__builtin_popcount(a ^ w));
            for (int l = 0; l < kMaxLookups; l++)
                for (int hi = 0; hi < 16; hi++)
                    for (int lo = 0; lo < 16; lo++)
                        t[bitserial_table(l, lo, hi)][w] =
                            uint8_t((__builtin_popcount(lo & w) + 2 * __builtin_popcount(hi & w)) << (2 * l));
        }
    }
};
const Tables& tables() {
    static const Tables t;
    return t;
}

// What one call needs, shared by its tasks (blocks of output pixels).
struct Job {
    const PackedActivations* in;
    const PackedWeights* w;
    int stride, pad, lookups, flush_every, out_h, out_w;
    bool bconv, zero_padding;
    // offsets[((n, y, x) padded pixel, g, k, lookup, m)]: byte offset of the step's table.
    std::vector<uint16_t> offsets;
    std::vector<int32_t> code_sums;  // bitserial: sum of codes per (padded pixel, g)
    std::vector<int32_t> tap_sums;   // bconv zero padding: Cg - 2 popcount(w) per (g, tap, padded c)
    TableOutput out;
    // Codes output: per level l (1 .. 2^bits - 1) and channel, the sum's threshold less one, in
    // the flipped form of generators/output_stage.h (code = #{l : (sum ^ flip) > thresholds});
    // flip = -1 for a negative multiplier, else 0.
    std::vector<int32_t> thresholds, flip;
    int levels = 0;
    // zmm codes output whose sums all fit int16 (|sum| <= 32766, build_thresholds16): the
    // epilogue works on 32 channels a vector, in the 16-bit sums' own order (per 64-channel block
    // of a group: its 32 even channels, then its 32 odd ones), with these thresholds and flips.
    bool sums16 = false;
    std::vector<int16_t> thresholds16, flip16;
    int padded_w, padded_h;

    size_t pixel(int n, int y, int x) const {  // y, x from -pad
        return (size_t(n) * padded_h + (y + in->border)) * padded_w + (x + in->border);
    }
};

// The byte offset of the table each nibble of every word picks (16 bytes per table).
void build_offsets(Job& j) {
    const PackedActivations& a = *j.in;
    const int words = a.words(), G = a.groups, L = j.lookups;
    const size_t pixels = size_t(a.shape.n) * j.padded_h * j.padded_w;
    j.offsets.resize(pixels * G * words * L * 16);
    if (!j.bconv) j.code_sums.resize(pixels * G);
    const uint64_t* src = a.data();
    // The 16 nibbles of a word as 16-bit lanes: nibble m is the low (m even) or high half of byte m / 2.
    auto nibbles = [](uint64_t v) {
        const __m128i bytes = _mm_cvtsi64_si128(int64_t(v)), mask = _mm_set1_epi8(15);
        return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(bytes, mask), _mm_and_si128(_mm_srli_epi16(bytes, 4), mask)));
    };
    // The sizes hoisted out of the loops (recomputed per step, they were most of this pass).
    const size_t pixel_words = a.pixel_words();
    const int planes = a.planes;
    const bool bconv = j.bconv;
    uint16_t* o = j.offsets.data();
    if (!bconv && L == 1 && G == 1) {
        // The common case (one or two planes, one group) on its own: the general loops' counters
        // and branches spilled, 5% of the 56x56x64 layer.
        const __m256i base = _mm256_set1_epi16(int16_t(bitserial_table(0, 0, 0)));
        for (size_t p = 0; p < pixels; p++) {
            const uint64_t* px = src + p * pixel_words;
            int32_t code_sum = 0;
            for (int k = 0; k < words; k++, o += 16) {
                const uint64_t lo = px[k], hi = planes > 1 ? px[words + k] : 0;
                const __m256i table = _mm256_add_epi16(_mm256_add_epi16(nibbles(lo), _mm256_slli_epi16(nibbles(hi), 4)), base);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_slli_epi16(table, 4));
                code_sum += __builtin_popcountll(lo) + (__builtin_popcountll(hi) << 1);
            }
            j.code_sums[p] = code_sum;
        }
        return;
    }
    for (size_t p = 0; p < pixels; p++)
        for (int g = 0; g < G; g++) {
            const uint64_t* px = src + p * pixel_words + size_t(g) * planes * words;  // plane i, word k: px[i * words + k]
            int32_t code_sum = 0;
            for (int k = 0; k < words; k++)
                for (int l = 0; l < L; l++, o += 16) {
                    __m256i table;
                    if (bconv) {
                        table = nibbles(px[k]);
                    } else {
                        const int i0 = kPlanesPerLookup * l, i1 = i0 + 1;
                        const uint64_t lo = px[i0 * words + k], hi = i1 < planes ? px[i1 * words + k] : 0;
                        table = _mm256_add_epi16(_mm256_add_epi16(nibbles(lo), _mm256_slli_epi16(nibbles(hi), 4)),
                                                 _mm256_set1_epi16(int16_t(bitserial_table(l, 0, 0))));
                        code_sum += (__builtin_popcountll(lo) << i0) + (__builtin_popcountll(hi) << i1);
                    }
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_slli_epi16(table, 4));  // 16 bytes a table
                }
            if (!bconv) j.code_sums[p * G + g] = code_sum;
        }
}

// Adds v to the 16-bit sums at a.
inline void add16(uint16_t* a, Vec::V v) {
    Vec::store(a, Vec::add16(Vec::load(a), v));
}

// The rows and columns of P consecutive output pixels from q0 (one division, not 2 P: they
// were 2% of the 56x56x64 layer).
template <int P>
inline void pixel_coordinates(int q0, int out_w, int (&ys)[P], int (&xs)[P]) {
    int y = q0 / out_w, x = q0 - y * out_w;
    for (int p = 0; p < P; p++) {
        ys[p] = y;
        xs[p] = x;
        if (++x == out_w) x = 0, y++;
    }
}

// The codes of the sums in `flipped` (one vector of channels): how many of the N levels'
// thresholds (t[l * stride], one vector each) they exceed. N a template parameter: unrolled, the
// loop's counter and addresses no longer cost as much as its compares.
template <int N>
inline __m256i levels_reached(__m256i flipped, const int32_t* t, size_t stride) {
    __m256i code = _mm256_setzero_si256();
#pragma GCC unroll 16
    for (int l = 0; l < N; l++)  // cmpgt: -1 where the level is reached
        code = _mm256_sub_epi32(code, _mm256_cmpgt_epi32(flipped, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + l * stride))));
    return code;
}
#if HALIBIT_TABLE_ZMM
template <int N>
inline __m512i levels_reached(__m512i flipped, const int32_t* t, size_t stride) {
    __m512i code = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int l = 0; l < N; l++)
        code = _mm512_mask_add_epi32(code, _mm512_cmpgt_epi32_mask(flipped, _mm512_loadu_si512(t + l * stride)), code,
                                     _mm512_set1_epi32(1));
    return code;
}
// 32 int16 sums (Job::sums16).
template <int N>
inline __m512i levels_reached(__m512i flipped, const int16_t* t, size_t stride) {
    __m512i code = _mm512_setzero_si512();
#pragma GCC unroll 16
    for (int l = 0; l < N; l++)
        code = _mm512_mask_add_epi16(code, _mm512_cmpgt_epi16_mask(flipped, _mm512_loadu_si512(t + l * stride)), code,
                                     _mm512_set1_epi16(1));
    return code;
}

// Where the sums16 thresholds of channel k of group g sit: its 64-channel block's first slot
// (the block's 32 even channels, then its 32 odd ones, follow).
inline size_t sums16_block_slot(int cog, int g, int k) { return (size_t(g) * ((cog + 63) / 64) + k / 64) * 64; }
#endif
// The same with the codes' levels (1, 3, 7 or 15) known at run time.
template <typename V, typename T>
inline V levels_reached(int levels, V flipped, const T* t, size_t stride) {
    switch (levels) {
    case 1: return levels_reached<1>(flipped, t, stride);
    case 3: return levels_reached<3>(flipped, t, stride);
    case 7: return levels_reached<7>(flipped, t, stride);
    default: return levels_reached<15>(flipped, t, stride);
    }
}

// A tile's output (after its last flush): even and odd are its 16-bit sums, as tile lays them
// out. A function of its own, not inlined, so that a profile shows its share apart from the tile
// loop's (inlined, its 25% of the 56x56x64 layer counted as the tile's).
template <int P, int BITS>
[[gnu::noinline]] void epilogue(const Job& j, int n, int g, int q0, int cb,
                                const uint16_t (*even)[BITS][Vec::vectors(BITS)][Vec::kBytes / 2],
                                const uint16_t (*odd)[BITS][Vec::vectors(BITS)][Vec::kBytes / 2]) {
    constexpr int NV = Vec::vectors(BITS), B = Vec::kBytes;
    const PackedWeights& w = *j.w;
    const int cog = w.out_channels_per_group(), KW = w.kernel_w, KH = w.kernel_h;
    int ys[P], xs[P];
    pixel_coordinates<P>(q0, j.out_w, ys, xs);
    // Byte lane b of vector v is channel cb + B v + b, and 16-bit lane h of even/odd holds
    // channels 2h and 2h + 1 of the vector.
    const int C = w.out_channels, cpg = w.in_channels_per_group, cend = std::min(cog - cb, B * NV);
    const int levels = j.levels;
    const int32_t* thresholds = j.thresholds.data();
    for (int p = 0; p < P; p++) {
        const int y = ys[p], x = xs[p];
        const size_t at = ((size_t(n) * j.out_h + y) * j.out_w + x) * C + size_t(g) * cog + cb;
        // Per pixel terms: the taps outside the image (bconv with zero padding) and the
        // window's code sum (bitserial, for encodings with an activation offset: not signed).
        int outside[kMaxTableTaps], n_outside = 0;
        int32_t act = 0;
        const int32_t offset = j.bconv ? 0 : activation_offset(w.encoding, BITS);
        if ((j.bconv && j.zero_padding) || offset != 0)
            for (int ky = 0; ky < KH; ky++)
                for (int kx = 0; kx < KW; kx++) {
                    const int iy = y * j.stride + ky - j.pad, ix = x * j.stride + kx - j.pad;
                    if (j.bconv) {
                        if (iy < 0 || iy >= j.in->shape.h || ix < 0 || ix >= j.in->shape.w) outside[n_outside++] = ky * KW + kx;
                    } else {
                        act += j.code_sums[j.pixel(n, iy, ix) * j.in->groups + g];
                    }
                }
#if HALIBIT_TABLE_ZMM
        static_assert(B == 64 && NV == 1);
        if (j.sums16) {
            // 32 even, then 32 odd channels, in int16 (the sums fit), interleaved as bytes at the
            // end: about a third of the instructions of the 32-bit path below (bitserial only:
            // AVX-512 has no bconv tables).
            const size_t slot = sums16_block_slot(cog, g, cb);
            const __m512i base16 = _mm512_set1_epi16(int16_t(offset * act));
            auto codes = [&](int parity) {  // 32 codes: channels 2 k + parity
                __m512i total = base16;
                for (int i = 0; i < BITS; i++)
                    total = _mm512_add_epi16(total, _mm512_mullo_epi16(_mm512_set1_epi16(int16_t(plane_coefficient(w.encoding, BITS, i))),
                                                                       _mm512_load_si512(parity ? odd[p][i][0] : even[p][i][0])));
                const size_t at16 = slot + 32 * parity;
                const __m512i flipped = _mm512_xor_si512(total, _mm512_loadu_si512(&j.flip16[at16]));
                const __m512i code = levels_reached(levels, flipped, &j.thresholds16[at16], j.flip16.size());
                return _mm512_cvtepi16_epi8(code);
            };
            const __m256i e = codes(0), o = codes(1);
            // unpack: [0..15 | 32..47] and [16..31 | 48..63]
            const __m256i lo = _mm256_unpacklo_epi8(e, o), hi = _mm256_unpackhi_epi8(e, o);
            const __m256i first = _mm256_permute2x128_si256(lo, hi, 0x20), second = _mm256_permute2x128_si256(lo, hi, 0x31);
            uint8_t* out = j.out.codes + at;
            if (cend == 64) {  // (plain stores: masked ones are slow on AMD)
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), first);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32), second);
            } else {
                _mm256_mask_storeu_epi8(out, __mmask32(cend >= 32 ? ~0u : (1u << cend) - 1), first);
                if (cend > 32) _mm256_mask_storeu_epi8(out + 32, __mmask32((1u << (cend - 32)) - 1), second);
            }
            continue;
        }
        // 16 channels at a time; tails through masked stores.
        for (int c16 = 0; c16 < cend; c16 += 16) {
            // Channels c16 .. c16 + 15: 8 even and 8 odd 16-bit sums, interleaved.
            __m512i total = _mm512_set1_epi32(offset * act);
            for (int i = 0; i < BITS; i++) {
                const __m128i e = _mm_load_si128(reinterpret_cast<const __m128i*>(even[p][i][0] + c16 / 2));
                const __m128i o16 = _mm_load_si128(reinterpret_cast<const __m128i*>(odd[p][i][0] + c16 / 2));
                const __m512i sum = _mm512_cvtepu16_epi32(_mm256_set_m128i(_mm_unpackhi_epi16(e, o16), _mm_unpacklo_epi16(e, o16)));
                total = _mm512_add_epi32(total, _mm512_mullo_epi32(_mm512_set1_epi32(plane_coefficient(w.encoding, BITS, i)), sum));
            }
            const int count = std::min(16, cend - c16);
            const __mmask16 m = __mmask16((1u << count) - 1);
            if (j.out.codes) {
                const int c = g * cog + cb + c16;  // (all groups)
                const __m512i flipped = _mm512_xor_si512(total, _mm512_loadu_si512(&j.flip[c]));
                const __m512i code = levels_reached(levels, flipped, thresholds + c, C);
                _mm_mask_storeu_epi8(j.out.codes + at + c16, m, _mm512_cvtepi32_epi8(code));
            } else {
                _mm512_mask_storeu_epi32(j.out.sums + at + c16, m, total);
            }
        }
#else
        __m256i base, coef[BITS];
        if (j.bconv) {
            base = _mm256_set1_epi32(KH * KW * cpg);
            coef[0] = _mm256_set1_epi32(-2);
        } else {
            base = _mm256_set1_epi32(offset * act);
            for (int i = 0; i < BITS; i++) coef[i] = _mm256_set1_epi32(plane_coefficient(w.encoding, BITS, i));
        }
        for (int c8 = 0; c8 < cend; c8 += 8) {
            // Channels c8 .. c8 + 7: 4 even and 4 odd 16-bit sums of vector c8 / B, interleaved.
            const int v = c8 / B, h = c8 % B / 2;
            __m256i total = base;
            for (int i = 0; i < BITS; i++) {
                const __m128i e = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(even[p][i][v] + h));
                const __m128i o16 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(odd[p][i][v] + h));
                total = _mm256_add_epi32(total, _mm256_mullo_epi32(coef[i], _mm256_cvtepu16_epi32(_mm_unpacklo_epi16(e, o16))));
            }
            for (int t = 0; t < n_outside; t++)
                total = _mm256_sub_epi32(total, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                                    &j.tap_sums[(size_t(g) * KH * KW + outside[t]) * w.padded_channels() + cb + c8])));
            const int count = std::min(8, cend - c8);
            if (j.out.codes) {
                const int c = g * cog + cb + c8;  // (all groups)
                const __m256i flipped = _mm256_xor_si256(total, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&j.flip[c])));
                const __m256i code = levels_reached(levels, flipped, thresholds + c, C);
                const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
                const __m128i b8 = _mm_packus_epi16(w16, w16);
                if (count == 8) {
                    _mm_storel_epi64(reinterpret_cast<__m128i*>(j.out.codes + at + c8), b8);
                } else {
                    alignas(16) uint8_t t16[16];
                    _mm_store_si128(reinterpret_cast<__m128i*>(t16), b8);
                    std::memcpy(j.out.codes + at + c8, t16, count);
                }
            } else if (count == 8) {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(j.out.sums + at + c8), total);
            } else {
                alignas(32) int32_t t8[8];
                _mm256_store_si256(reinterpret_cast<__m256i*>(t8), total);
                std::memcpy(j.out.sums + at + c8, t8, sizeof(int32_t) * count);
            }
        }
#endif
    }
}

// P consecutive output pixels (of the image, row-major from q0: a tile may span rows) of one
// group, the B x NV output channels of the group from cb; BITS weight planes.
template <int P, int BITS>
void tile(const Job& j, int n, int g, int q0, int cb) {
    using V = Vec::V;
    constexpr int NV = Vec::vectors(BITS), B = Vec::kBytes;
    const PackedWeights& w = *j.w;
    const int words = w.words(), cog = w.out_channels_per_group();
    const int KW = w.kernel_w, KH = w.kernel_h, L = j.lookups, F = j.flush_every;
    // This tile's block of 64 output channels in the nibbles (kernels.h), from channel cb.
    constexpr int A = kWeightChannelAlign;
    static_assert(A % (B * NV) == 0, "a tile's channels lie in one block of the nibbles");
    const uint8_t* w_block = w.nibbles.data() + (cb / A) * w.nibble_block_bytes() + cb % A;
    const uint8_t* table_bytes = &tables().t[0][0];
    // Each pixel's coordinates and its window's first offsets; a tap adds the same to all.
    int ys[P], xs[P];
    const uint16_t* window[P];
    const size_t pixel_offsets = size_t(j.in->groups) * words * L * 16;
    pixel_coordinates<P>(q0, j.out_w, ys, xs);
    for (int p = 0; p < P; p++) {
        window[p] = &j.offsets[(j.pixel(n, ys[p] * j.stride - j.pad, xs[p] * j.stride - j.pad) * j.in->groups + g) * words * L * 16];
    }
    // Byte accumulators, flushed every F steps into 16-bit ones (even and odd bytes apart).
    // The 16-bit ones live in memory (stores at each flush) so that the registers hold the
    // byte accumulators; the first flush stores rather than adds (no zeroing per tile).
    V acc[P][BITS][NV];
    alignas(64) uint16_t even[P][BITS][NV][B / 2], odd[P][BITS][NV][B / 2];
    bool first_flush = true;
#pragma GCC unroll 32
    for (int p = 0; p < P; p++)
        for (int i = 0; i < BITS; i++)
            for (int v = 0; v < NV; v++) acc[p][i][v] = Vec::zero();
    int steps = 0;
    // A macro, not a lambda: captured by reference, GCC keeps the accumulators on the stack.
#define HALIBIT_FLUSH                                                                                            \
    _Pragma("GCC unroll 32") for (int p = 0; p < P; p++)                                                        \
        for (int i = 0; i < BITS; i++)                                                                          \
            for (int v = 0; v < NV; v++) {                                                                      \
                if (first_flush) {                                                                              \
                    Vec::store(even[p][i][v], Vec::even(acc[p][i][v]));                                         \
                    Vec::store(odd[p][i][v], Vec::odd(acc[p][i][v]));                                           \
                } else {                                                                                        \
                    add16(even[p][i][v], Vec::even(acc[p][i][v]));                                              \
                    add16(odd[p][i][v], Vec::odd(acc[p][i][v]));                                                \
                }                                                                                               \
                acc[p][i][v] = Vec::zero();                                                                     \
            }                                                                                                   \
    first_flush = false;                                                                                        \
    steps = 0;
    for (int ky = 0; ky < KH; ky++)
        for (int kx = 0; kx < KW; kx++)
            for (int k = 0; k < words; k++) {
                const size_t tap = (size_t(ky) * j.padded_w + kx) * pixel_offsets + size_t(k) * L * 16;
                const uint16_t* off[P];
#pragma GCC unroll 32
                for (int p = 0; p < P; p++) off[p] = window[p] + tap;
                const uint8_t* wk = w_block + ((((size_t(g) * KH + ky) * KW + kx) * words + k) * 16) * BITS * A;
                // Steps in groups of kStepGroup, unrolled, with one flush check per group (F is a
                // multiple of it): the loop and counter overhead per step otherwise costs as much
                // as the lookups on Intel cores.
                for (int m0 = 0; m0 < 16; m0 += kStepGroup) {
#pragma GCC unroll 16
                    for (int m = m0; m < m0 + kStepGroup; m++) {
                        V wv[BITS][NV];
                        for (int i = 0; i < BITS; i++)
                            for (int v = 0; v < NV; v++) wv[i][v] = Vec::load(wk + (size_t(m) * BITS + i) * A + B * v);
                        // The lookups unrolled (L is 1 or 2): one predictable branch rather than a loop.
#pragma GCC unroll 2
                        for (int l = 0; l < kMaxLookups; l++)
                            if (l == 0 || l < L)
#pragma GCC unroll 32
                            for (int p = 0; p < P; p++) {
                                const V t = Vec::table(table_bytes + off[p][l * 16 + m]);
                                for (int i = 0; i < BITS; i++)
                                    for (int v = 0; v < NV; v++)
                                        acc[p][i][v] = Vec::add8(acc[p][i][v], Vec::lookup(t, wv[i][v]));
                            }
                    }
                    if ((steps += kStepGroup) == F) {
                        HALIBIT_FLUSH
                    }
                }
            }
    HALIBIT_FLUSH
#undef HALIBIT_FLUSH
    epilogue<P, BITS>(j, n, g, q0, cb, even, odd);
}

// The tail (fewer than P pixels) as one narrower tile.
template <int P, int BITS>
void tail(const Job& j, int n, int g, int q, int count, int cb) {
    if constexpr (P > 1) {
        if (count == P) return tile<P, BITS>(j, n, g, q, cb);
        tail<P - 1, BITS>(j, n, g, q, count, cb);
    } else {
        tile<1, BITS>(j, n, g, q, cb);
    }
}

// Output pixels [q0, q1) of image n, group g. Channel blocks outermost: one block's weights
// (147 KB at 7x7x512, whose whole 1.2 MB would not fit L2) stay in L2 while every pixel tile
// of the task reads them.
template <int BITS>
void pixels(const Job& j, int n, int g, int q0, int q1) {
    constexpr int P = Vec::pixels(BITS), channels = Vec::kBytes * Vec::vectors(BITS);
    for (int cb = 0; cb < j.w->out_channels_per_group(); cb += channels) {
        int q = q0;
        for (; q + P <= q1; q += P) tile<P, BITS>(j, n, g, q, cb);
        if (q < q1) tail<P - 1, BITS>(j, n, g, q, q1 - q, cb);
    }
}

// Tasks: blocks of Vec::kBlockPixels output pixels of one image and group.
constexpr int kBlockPixels = Vec::kBlockPixels;

int block_task(void*, int task, uint8_t* closure) {
    static_assert(kBlockPixels % Vec::pixels(1) == 0 && kBlockPixels % Vec::pixels(2) == 0 &&
                  kBlockPixels % Vec::pixels(3) == 0 && kBlockPixels % Vec::pixels(4) == 0);
    const Job& j = *reinterpret_cast<const Job*>(closure);
    const int G = j.in->groups, per_image = j.out_h * j.out_w;
    const int block = kBlockPixels;
    const int blocks = (per_image + block - 1) / block;
    const int b = task % blocks, g = (task / blocks) % G, n = task / blocks / G;
    const int q0 = b * block, q1 = std::min(per_image, q0 + block);
    switch (j.w->bits) {
    case 1: pixels<1>(j, n, g, q0, q1); break;
    case 2: pixels<2>(j, n, g, q0, q1); break;
    case 3: pixels<3>(j, n, g, q0, q1); break;
    default: pixels<4>(j, n, g, q0, q1); break;
    }
    return 0;
}

// The codes output's thresholds (Job::thresholds), as requantization_thresholds in
// generators/output_stage.h computes them: code = #{l : sum x M + B + round >= l 2^S}.
void build_thresholds(Job& j, const Requantization& rq) {
    const int C = j.w->out_channels, levels = j.levels = (1 << rq.out_bits) - 1;
    // (Padded with 16 entries so that the last channels' vectors stay inside.)
    j.thresholds.assign(size_t(levels) * C + 16, 0);
    j.flip.assign(size_t(C) + 16, 0);
    const int64_t round = rq.shift > 0 ? int64_t(1) << (rq.shift - 1) : 0, limit = INT32_MAX;
    for (int c = 0; c < C; c++) {
        const int64_t m = rq.multiplier[c];
        j.flip[c] = m < 0 ? -1 : 0;
        for (int l = 1; l <= levels; l++) {
            // In 128 bits: l 2^S - B overflows int64 at shifts near 62 or extreme biases.
            using i128 = __int128;
            const i128 need = (i128(l) << rq.shift) - rq.bias[c] - round;  // sum x M >= need
            auto floor_div = [](i128 a, i128 b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
            const i128 t128 = m > 0 ? -floor_div(-need, m) : m < 0 ? floor_div(need, m) : need <= 0 ? i128(INT64_MIN) : i128(INT64_MAX);
            const int64_t t = int64_t(std::clamp<i128>(t128, INT64_MIN, INT64_MAX));
            // Compared as (sum ^ flip) > threshold - 1; the clamp is exact for sums within
            // +-(2^31 - 2), and a table kernel's are far smaller.
            j.thresholds[size_t(l - 1) * C + c] = int32_t(std::clamp<int64_t>(t ^ j.flip[c], -limit, limit) - 1);
        }
    }
}

#if HALIBIT_TABLE_ZMM
// Job::sums16 and its thresholds: where every sum the epilogue forms, offset x code sum + the
// planes' sums x their coefficients, is within +-32766, an int16 compare with thresholds clamped
// to +-32767 is exact (as in build_thresholds, one bit narrower).
void build_thresholds16(Job& j, const Requantization& rq) {
    const PackedWeights& w = *j.w;
    const int64_t window = int64_t(w.in_channels_per_group) * w.kernel_h * w.kernel_w * ((1 << j.in->planes) - 1);
    int64_t scale = std::abs(activation_offset(w.encoding, w.bits));
    for (int i = 0; i < w.bits; i++) scale += std::abs(plane_coefficient(w.encoding, w.bits, i));
    j.sums16 = window * scale <= 32766 && rq.out_bits <= kTableMaxCodeBits;
    if (!j.sums16) return;
    const int cog = w.out_channels_per_group(), levels = j.levels;  // (build_thresholds ran first)
    const size_t stride = sums16_block_slot(cog, w.groups, 0);
    j.flip16.assign(stride, 0);
    j.thresholds16.assign(size_t(levels) * stride, 0);
    for (int c = 0; c < w.out_channels; c++) {
        const int g = c / cog, k = c % cog;
        const size_t slot = sums16_block_slot(cog, g, k) + (k % 2) * 32 + k % 64 / 2;
        j.flip16[slot] = int16_t(j.flip[c]);
        for (int l = 0; l < levels; l++) {
            // build_thresholds' value is clamp(t ^ flip, +-(2^31 - 1)) - 1: the same clamp to 16 bits.
            const int64_t t1 = int64_t(j.thresholds[size_t(l) * w.out_channels + c]) + 1;
            j.thresholds16[l * stride + slot] = int16_t(std::clamp<int64_t>(t1, -32767, 32767) - 1);
        }
    }
}
#endif

void run(Job& j, ConvGeometry geo, TableOutput out) {
    const PackedActivations& a = *j.in;
    const PackedWeights& w = *j.w;
    j.stride = geo.stride;
    j.pad = geo.pad;
    j.out = out;
    if (out.codes) build_thresholds(j, *out.rq);
#if HALIBIT_TABLE_ZMM
    if (out.codes) build_thresholds16(j, *out.rq);
#endif
    j.out_h = conv_out_size(a.shape.h, w.kernel_h, geo.stride, geo.pad);
    j.out_w = conv_out_size(a.shape.w, w.kernel_w, geo.stride, geo.pad);
    j.padded_w = a.shape.w + 2 * a.border;
    j.padded_h = a.shape.h + 2 * a.border;
    const int growth = j.bconv ? 4 : 4 * ((1 << a.planes) - 1);  // a byte accumulator's growth per step
    j.flush_every = 255 / growth / kStepGroup * kStepGroup;
    build_offsets(j);
    const int block = kBlockPixels, blocks = (j.out_h * j.out_w + block - 1) / block;
    halide_do_par_for(nullptr, block_task, 0, a.shape.n * a.groups * blocks, reinterpret_cast<uint8_t*>(&j));
}

void bconv_tables(const PackedActivations& in, const PackedWeights& w, BConvOptions o, TableOutput out) {
    Job j{};
    j.in = &in;
    j.w = &w;
    j.bconv = true;
    j.lookups = 1;
    j.zero_padding = !o.one_padding;
    if (j.zero_padding) {
        const int taps = w.kernel_h * w.kernel_w, cog = w.out_channels_per_group(), cp = w.padded_channels();
        j.tap_sums.assign(size_t(w.groups) * taps * cp, w.in_channels_per_group);
        for (int g = 0; g < w.groups; g++)
            for (int t = 0; t < taps; t++)
                for (int k = 0; k < w.words(); k++)
                    for (int c = 0; c < cog; c++)
                        j.tap_sums[(size_t(g) * taps + t) * cp + c] -=
                            2 * __builtin_popcountll(w.words_data[c + size_t(cp) * (k + size_t(w.words()) * (size_t(g) * taps + t))]);
    }
    run(j, o.geometry, out);
}

void bitserial_tables(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, TableOutput out) {
    Job j{};
    j.in = &in;
    j.w = &w;
    j.bconv = false;
    j.lookups = (in.planes + kPlanesPerLookup - 1) / kPlanesPerLookup;
    run(j, g, out);
}

}  // namespace

#if HALIBIT_TABLE_ZMM  // no bconv: the Halide vpopcntq kernel is faster on AVX-512
void bitserial_table_avx512(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, TableOutput out) {
    bitserial_tables(in, w, g, out);
}
#else
void bconv_table_avx2(const PackedActivations& in, const PackedWeights& w, BConvOptions o, TableOutput out) {
    bconv_tables(in, w, o, out);
}

void bitserial_table_avx2(const PackedActivations& in, const PackedWeights& w, ConvGeometry g, TableOutput out) {
    bitserial_tables(in, w, g, out);
}
#endif

}  // namespace halibit
