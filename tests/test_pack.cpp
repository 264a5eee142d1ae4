// pack against the reference packing: planes 1..8, groups, channel tails.
#include "conv_cases.h"

namespace halibit::test {
namespace {

class Pack : public ::testing::Test {
protected:
    void SetUp() override { use_test_isa(); }
};

TEST_F(Pack, MatchesReferenceForAllPlanesGroupsAndTails) {
    for (int planes = 1; planes <= 8; planes++)
        for (int groups : {1, 2, 4})
            for (int cg : channel_sweep()) {
                SCOPED_TRACE("planes " + std::to_string(planes) + " groups " + std::to_string(groups) + " cg " + std::to_string(cg));
                const int c = cg * groups;
                auto codes = random_codes(2, 3, 5, c, planes);
                auto expected = ref::pack_bitplanes(codes, planes, groups);
                for (int border : {0, 1, 3}) {
                    PackedActivations p;
                    pack_activations(codes.data.data(), {2, 3, 5, c}, planes, groups, p, border);
                    auto image = packed_image(p);
                    ASSERT_EQ(image.size(), expected.size());
                    ASSERT_EQ(first_mismatch(expected, image.data(), image.size()), "");
                    ASSERT_TRUE(border_is_zero(p));
                }
            }
}

TEST(PackErrors, ChannelsMustSplitIntoGroups) {
    std::vector<uint8_t> codes(6);
    PackedActivations p;
    EXPECT_THROW(pack_activations(codes.data(), {1, 1, 1, 6}, 1, 4, p), Error);
}

}  // namespace
}  // namespace halibit::test
