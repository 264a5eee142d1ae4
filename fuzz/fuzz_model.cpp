// Fuzzes the model loader and validator (Model::from_bytes), then Session::prepare() and one
// run() on a small input when loading succeeds. Every input must end in a model or a
// halibit::Error; once a model has loaded, Session must not fail at all (the validator is
// what stands between a file and the kernels: "Session never sees a malformed graph").
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "halibit/session.h"

namespace {

// Keeps one execution fast. Models beyond these are valid; they are validated only (a model
// may declare up to 2^29 activation elements per tensor, docs/model-format.md).
constexpr int64_t kMaxActivationBytes = int64_t(64) << 20;  // skip prepare() above this
constexpr int64_t kMaxRunMacs = int64_t(1) << 22;            // skip run() above this

// An upper bound of Session's activation arena for batch 1: every tensor as int32 plus bit
// planes (at most 8 bytes per plane and channel with one channel per group, and a border of
// at most 7 pixels).
int64_t activation_bound(const halibit::Model& m) {
    int64_t total = 0;
    for (const auto& [name, t] : m.tensors())
        total += t.elements() * 4 + (int64_t(t.h) + 14) * (t.w + 14) * t.c * 8 * (t.type == halibit::TensorType::codes ? t.bits : 0);
    return total;
}

[[noreturn]] void fail(const char* what, const std::string& detail) { halibit::fuzz::fail("model", what, detail); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::shared_ptr<const halibit::Model> model;
    try {
        model = halibit::Model::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz.halibit");
    } catch (const halibit::Error& e) {
        halibit::fuzz::expect_names_file(e, "fuzz.halibit", "model");
        return 0;
    }
    if (activation_bound(*model) > kMaxActivationBytes) return 0;

    // Kernel choice and ISA from the input size, so that every path is taken.
    const halibit::KernelChoice kernels[] = {halibit::KernelChoice::automatic, halibit::KernelChoice::bitserial,
                                             halibit::KernelChoice::u8};
    std::vector<halibit::Isa> isas;
    for (halibit::Isa isa : {halibit::Isa::automatic, halibit::Isa::avx2, halibit::Isa::scalar})
        if (halibit::isa_available(isa)) isas.push_back(isa);
    halibit::SessionOptions options;
    options.threads = 1;
    options.kernels = kernels[size % 3];
    options.isa = isas[(size / 3) % isas.size()];
    try {
        halibit::Session session(model, options);
        session.prepare(1);
        if (model->macs() > kMaxRunMacs) return 0;
        std::vector<uint8_t> image(size_t(model->input().elements()));
        for (size_t i = 0; i < image.size(); i++) image[i] = uint8_t(data[i % size] + i);
        const std::vector<int32_t> logits = session.run(image.data(), 1);
        if (logits.size() != size_t(model->output().c)) fail("logits", "wrong size");
    } catch (const halibit::Error& e) {
        fail("Session failed on a model that loaded", e.what());
    }
    return 0;
}
