// The glue ops between convolutions (docs/model-format.md): residual add, pools, channel
// shuffle, each a Halide kernel (generators/); runtime/reference/glue.h holds their reference.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "halibit/kernels.h"

namespace halibit {

struct AddParams {
    std::vector<int32_t> multiplier[2];
    std::vector<int64_t> bias;
    int shift = 0;
    int out_bits = 8;
};
struct AddInput {
    bool int32 = false;  // int32 accumulators, else uint8 codes
    const void* data = nullptr;
};
// out[p, c] = clamp(round(x0 * M0[c] + x1 * M1[c] + B[c], S), 0, 2^bits - 1) over `pixels` x `channels`.
void add(AddInput x0, AddInput x1, size_t pixels, int channels, const AddParams& p, uint8_t* out);

// Maximum over the window positions inside the image.
void max_pool(const uint8_t* in, const ActivationShape& s, int kernel_h, int kernel_w, int stride, int pad, uint8_t* out);

// out[n, c] = clamp(round(sum_{y,x} in * multiplier, shift), 0, 2^bits - 1).
void global_avg_pool(const uint8_t* in, const ActivationShape& s, int64_t multiplier, int shift, int out_bits, uint8_t* out);

// With channels = groups * K: output channel k * groups + g is input channel g * K + k.
void channel_shuffle(const uint8_t* in, size_t pixels, int channels, int groups, uint8_t* out);

}  // namespace halibit
