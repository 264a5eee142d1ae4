// `pack`: unsigned activation codes (NHWC) to bit planes along channels.
// Input codes(c, x, y, n), output bytes(kb, j, g, x, y, n); see runtime/reference/pack.h.
//
// When a group's channel count is a multiple of 8, eight codes are read as one 64-bit word
// (`code_words`, the same memory) and their bit j is gathered into a byte with three shift-ors:
// byte b's bit sits at bit 8b; x |= x >> 7 moves byte b+1's bit next to it, >> 14 and >> 28 do
// the same for pairs and quads. Other channel counts take a byte at a time from the codes.
#include "Halide.h"
#include "output_stage.h"
#include "../schedules/pack.h"

namespace halibit {

class Pack : public Generator<Pack> {
public:
    GeneratorParam<std::string> schedule{"schedule", "tuned"};

    Input<Buffer<uint8_t>> codes{"codes", 4};             // (c, x, y, n)
    Input<Buffer<uint64_t>> code_words{"code_words", 4};  // (c / 8, x, y, n): the same codes, 8 per word
    Input<int32_t> groups{"groups"};
    Input<bool> whole_words{"whole_words"};               // channels per group % 8 == 0: read code_words
    // Channels per group % 64 == 0: every byte of a plane is one whole word of codes (no clamp, no
    // zero bytes past the group's channels), so its branch is a plain vector loop.
    Input<bool> whole_planes{"whole_planes"};
    Output<Buffer<uint8_t>> packed{"packed", 6};          // (kb, j, g, x, y, n)

    void generate() {
        Var c("c"), g("g"), x("x"), y("y"), n("n"), kb("kb"), j("j");
        Expr cg = codes.dim(0).extent() / groups;
        Func grouped("grouped");
        grouped(c, g, x, y, n) = codes(g * cg + c, x, y, n);
        Func bytes = pack_codes(grouped, cg, "bytes");

        Expr words_per_group = cg / 8;
        auto plane_byte = [&](Expr word) {
            Expr bits = (word >> cast<uint64_t>(j)) & Expr(uint64_t(0x0101010101010101ULL));
            bits = bits | (bits >> cast<uint64_t>(7));
            bits = bits | (bits >> cast<uint64_t>(14));
            bits = bits | (bits >> cast<uint64_t>(28));
            return cast<uint8_t>(bits);
        };
        Expr index = clamp(g * words_per_group + min(kb, words_per_group - 1), 0, code_words.dim(0).extent() - 1);
        Expr from_words = select(kb < words_per_group, plane_byte(code_words(index, x, y, n)), cast<uint8_t>(0));
        Expr from_planes = plane_byte(code_words(g * words_per_group + kb, x, y, n));

        packed(kb, j, g, x, y, n) =
            select(whole_planes, from_planes, select(whole_words, from_words, bytes(kb, j, g, x, y, n)));

        codes.dim(0).set_stride(1);
        code_words.dim(0).set_stride(1);
        // A plane is whole 64-bit words (PackedActivations): vectors of its bytes need no tail.
        packed.dim(0).set_min(0).set_extent(packed.dim(0).extent() / 8 * 8).set_stride(1);
        schedule_pack(packed, whole_planes, whole_words, schedule, get_target(), auto_schedule, codes);
    }
};

}  // namespace halibit

HALIDE_REGISTER_GENERATOR(halibit::Pack, pack)
