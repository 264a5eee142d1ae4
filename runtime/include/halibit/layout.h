// The constants of the packed weight layouts that both sides must agree on: the generators and
// schedules (which read them) and the runtime (which packs them). Included by both.
#pragma once

namespace halibit {

// Every convolution's weights pad a group's output channels with zeros to a multiple of this,
// so that register tiles never read past the end (schedules/channel_tile.h checks the tiles).
inline constexpr int kWeightChannelAlign = 64;

// conv_u8's int16 copy of full-range weights (AVX2): output channels per tile.
inline constexpr int kWeights16Tile = 8;

// lut_conv's activation tables: 4-channel blocks per byte-accumulator chunk; the weights pad the
// blocks to a multiple of it.
inline constexpr int kLutChunk = 4;

// lut_conv's pairwise table: input channels of the largest byte-accumulator chunk; the weights
// pad the channels to a multiple of it with index 0.
inline constexpr int kPairwiseChunk = 16;

}  // namespace halibit
