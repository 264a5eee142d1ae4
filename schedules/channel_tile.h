// The register tiles' contract with the packed weights: weights are padded to a multiple of
// kWeightChannelAlign (64) output channels per group and channel tiles run unguarded, so a tile's channels must divide
// 64. Checked when a generator runs, so that a tile_vectors value that breaks it is refused
// with this message instead of compiling a kernel that reads past the weights.
#pragma once
#include <stdexcept>
#include <string>

#include "../runtime/include/halibit/layout.h"

namespace halibit {

inline void check_channel_tile(const std::string& family, int vectors, int channels) {
    if (channels > kWeightChannelAlign || kWeightChannelAlign % channels != 0)
        throw std::runtime_error(family + ": tile_vectors=" + std::to_string(vectors) + " makes tiles of " +
                                 std::to_string(channels) + " output channels on this target; they must divide " +
                                 std::to_string(kWeightChannelAlign) + ", the multiple the weights are padded to");
}

}  // namespace halibit
