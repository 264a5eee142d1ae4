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
                PackedActivations p;
                pack_activations(codes.data.data(), {2, 3, 5, c}, planes, groups, p);
                auto expected = ref::pack_bitplanes(codes, planes, groups);
                ASSERT_EQ(p.words_data.size() * 4, expected.size());
                ASSERT_EQ(first_mismatch(expected, p.bytes(), expected.size()), "");
            }
}

TEST(PackErrors, ChannelsMustSplitIntoGroups) {
    std::vector<uint8_t> codes(6);
    PackedActivations p;
    EXPECT_THROW(pack_activations(codes.data(), {1, 1, 1, 6}, 1, 4, p), Error);
}

}  // namespace
}  // namespace halibit::test
