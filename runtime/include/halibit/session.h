// Runs a Model: prepare() once (packs weights, plans the activation arena), run() many times.
// One Session per thread; many Sessions may share one Model.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "halibit/isa.h"
#include "halibit/model.h"

namespace halibit {

// Which convolution kernels run: `auto` picks per layer from the kernel choice table
// (runtime/src/kernel_choice.h), `bitserial` prefers the bit-serial kernels wherever they apply,
// `u8` runs every convolution with the 8-bit kernel (the in-house int8 baseline).
// lut: the table-lookup convolutions (lut_conv's activation tables) wherever they apply.
enum class KernelChoice { automatic, bitserial, u8, lut };
const char* kernel_choice_name(KernelChoice k);
KernelChoice parse_kernel_choice(const std::string& name);  // "auto", "bitserial", "u8", "lut"; throws halibit::Error

struct SessionOptions {
    int threads = 1;
    Isa isa = Isa::automatic;
    KernelChoice kernels = KernelChoice::automatic;
};

struct LayerProfile {
    std::string name;
    std::string op;
    std::string kernel;  // the family chosen and its operands, e.g. "bitserial w2a2 signed", "u8 w8a8", "add"
    // The kernel libraries that ran in the last run(), '+'-joined without the halibit_ prefix,
    // in the kernel list's order, e.g. "table_conv_w2_codes" or "pack+conv_u8_codes" (packing the output
    // for the next layer).
    std::string implementation;
    double seconds = 0;  // of the last run()
    int64_t macs = 0;    // for the whole batch
};

class Session {
public:
    Session(std::shared_ptr<const Model> model, SessionOptions options = {});
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Packs weights and plans buffers for `batch` images. run() calls it if the batch changes.
    void prepare(int batch = 1);
    // images: uint8 NHWC [batch, H, W, C] (the model's input tensor); returns the int32 output
    // tensor, [batch, classes].
    std::vector<int32_t> run(const uint8_t* images, int batch = 1);

    const std::vector<LayerProfile>& profile() const;
    // After prepare(): the convolutions that do not run the kernel family the options ask for
    // (`--kernels bitserial` or `lut` on a layer they cannot take, or bit planes packed for
    // another group count), each "layer 'NAME' runs conv_u8: why".
    const std::vector<std::string>& kernel_notes() const;
    // Bytes of activation memory of the planned arena (excluding packed weights).
    size_t arena_bytes() const;
    size_t weight_bytes() const;
    const Model& model() const;
    const SessionOptions& options() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace halibit
