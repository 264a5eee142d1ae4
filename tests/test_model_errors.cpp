// Malformed model files: each is refused with a halibit::Error naming the file, and where it
// applies the layer and the field. The valid base model is built here, byte by byte.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include <nlohmann/json.hpp>

#include "halibit/error.h"
#include "halibit/session.h"

namespace halibit {
namespace {

using Json = nlohmann::json;

// A small valid model: image [4, 4, 1] 8-bit codes -> 3x3 conv (2-bit signed weights) to
// [2, 2, 3] 2-bit codes -> global average pool to [1, 1, 3] 8-bit -> 1x1 conv (4-bit weights)
// to int32 logits [1, 1, 2].
struct ModelBytes {
    Json header, graph;
    std::vector<uint8_t> data;

    void add_tensor(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, const void* bytes, size_t n) {
        header[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + n}}};
        const auto* p = static_cast<const uint8_t*>(bytes);
        data.insert(data.end(), p, p + n);
    }
    std::vector<uint8_t> bytes() const {
        Json h = header;
        h["__metadata__"] = {{"halibit", graph.dump()}};
        const std::string text = h.dump();
        // Sized once and filled with memcpy: growing the vector with insert made GCC 12 warn
        // (-Wstringop-overread, a false positive).
        const uint64_t n = text.size();
        std::vector<uint8_t> out(8 + text.size() + data.size());
        std::memcpy(out.data(), &n, 8);
        std::memcpy(out.data() + 8, text.data(), text.size());
        if (!data.empty()) std::memcpy(out.data() + 8 + text.size(), data.data(), data.size());
        return out;
    }
};

ModelBytes valid_model() {
    ModelBytes m;
    std::vector<int8_t> w1(3 * 3 * 3 * 1);
    for (size_t i = 0; i < w1.size(); i++) w1[i] = int8_t(int(i % 4) - 2);  // 2-bit signed: -2..1
    const int32_t mult1[3] = {1, 2, 3};
    const int64_t bias1[3] = {0, 8, -8};
    const std::vector<int8_t> w2 = {1, -2, 3, -4, 5, -6};
    m.add_tensor("conv.weight", "I8", {3, 3, 3, 1}, w1.data(), w1.size());
    m.add_tensor("conv.multiplier", "I32", {3}, mult1, sizeof mult1);
    m.add_tensor("conv.bias", "I64", {3}, bias1, sizeof bias1);
    m.add_tensor("fc.weight", "I8", {2, 1, 1, 3}, w2.data(), w2.size());
    m.graph = {
        {"format_version", 1},
        {"name", "tiny"},
        {"input", {{"tensor", "image"}, {"color", "gray"}}},
        {"output", {{"tensor", "logits"}, {"scale", 0.5}}},
        {"labels", {"a", "b"}},
        {"tensors",
         {{"image", {{"shape", {4, 4, 1}}, {"type", "codes"}, {"bits", 8}}},
          {"t1", {{"shape", {2, 2, 3}}, {"type", "codes"}, {"bits", 2}}},
          {"t2", {{"shape", {1, 1, 3}}, {"type", "codes"}, {"bits", 8}}},
          {"logits", {{"shape", {1, 1, 2}}, {"type", "int32"}}}}},
        {"layers",
         {{{"name", "conv"}, {"op", "conv"}, {"inputs", {"image"}}, {"output", "t1"}, {"kernel", {3, 3}}, {"stride", 1},
           {"pad", 0}, {"groups", 1},
           {"weights", {{"tensor", "conv.weight"}, {"encoding", "signed"}, {"bits", 2}}},
           {"requantize", {{"multiplier", "conv.multiplier"}, {"bias", "conv.bias"}, {"shift", 4}}}},
          {{"name", "pool"}, {"op", "global_avg_pool"}, {"inputs", {"t1"}}, {"output", "t2"}, {"multiplier", 64}, {"shift", 2}},
          {{"name", "fc"}, {"op", "conv"}, {"inputs", {"t2"}}, {"output", "logits"}, {"kernel", {1, 1}}, {"stride", 1},
           {"pad", 0}, {"weights", {{"tensor", "fc.weight"}, {"encoding", "signed"}, {"bits", 4}}}}}}};
    return m;
}

// Expects load to throw a halibit::Error whose message contains every piece of `parts`.
void expect_error(const std::vector<uint8_t>& bytes, std::vector<std::string> parts) {
    try {
        Model::from_bytes(bytes, "bad.halibit");
        FAIL() << "loaded without error; expected: " << parts[0];
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_EQ(m.rfind("bad.halibit: ", 0), 0u) << m;
        for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "message '" << m << "' lacks '" << p << "'";
    }
}

TEST(ModelFile, ValidModelRunsAndMatchesHandComputation) {
    auto model = Model::from_bytes(valid_model().bytes(), "tiny.halibit");
    EXPECT_EQ(model->layers().size(), 3u);
    EXPECT_EQ(model->output().c, 2);
    EXPECT_EQ(model->macs(), 2 * 2 * 3 * 9 + 6);
    // Image: all ones. conv acc[c] = sum of the 9 weights of channel c.
    std::vector<uint8_t> image(16, 1);
    Session session(model);
    const auto logits = session.run(image.data(), 1);
    // Weights cycle -2,-1,0,1 over index i: channel c holds i = 9c..9c+8.
    int codes[3];
    const int mult[3] = {1, 2, 3}, bias[3] = {0, 8, -8};
    for (int c = 0; c < 3; c++) {
        int acc = 0;
        for (int i = 9 * c; i < 9 * c + 9; i++) acc += i % 4 - 2;
        codes[c] = std::clamp((acc * mult[c] + bias[c] + 8) >> 4, 0, 3);
    }
    // Pool: 4 equal pixels, sum * 64 >> 2 (+2 rounding) = 64 code, clamped to 255.
    int pooled[3];
    for (int c = 0; c < 3; c++) pooled[c] = std::clamp((4 * codes[c] * 64 + 2) >> 2, 0, 255);
    EXPECT_EQ(logits[0], 1 * pooled[0] - 2 * pooled[1] + 3 * pooled[2]);
    EXPECT_EQ(logits[1], -4 * pooled[0] + 5 * pooled[1] - 6 * pooled[2]);
}

TEST(ModelFile, MissingFile) {
    try {
        Model::load("/nonexistent/model.halibit");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/model.halibit: cannot open"), std::string::npos) << e.what();
    }
}

TEST(ModelFile, Truncated) {
    auto b = valid_model().bytes();
    expect_error({b.begin(), b.begin() + 5}, {"truncated"});
    b.resize(b.size() - 3);  // the last tensor loses bytes
    expect_error(b, {"tensors['fc.weight'].data_offsets", "outside the data section"});
}

TEST(ModelFile, HeaderLengthPastTheEnd) {
    auto b = valid_model().bytes();
    const uint64_t huge = uint64_t(1) << 40;
    std::memcpy(b.data(), &huge, 8);
    expect_error(b, {"header length", "runs past the end"});
}

TEST(ModelFile, InvalidJson) {
    auto b = valid_model().bytes();
    b[8] = '[';  // the header no longer parses
    b[9] = '}';
    expect_error(b, {"not valid JSON"});
    ModelBytes m = valid_model();
    auto good = m.bytes();
    Json h = m.header;
    h["__metadata__"] = {{"halibit", "{not json"}};
    const std::string text = h.dump();
    std::vector<uint8_t> bad(8);
    const uint64_t n = text.size();
    std::memcpy(bad.data(), &n, 8);
    bad.insert(bad.end(), text.begin(), text.end());
    bad.insert(bad.end(), m.data.begin(), m.data.end());
    expect_error(bad, {"__metadata__.halibit", "not valid JSON"});
}

TEST(ModelFile, NotAHalibitModel) {
    ModelBytes m = valid_model();
    Json h = m.header;
    const std::string text = h.dump();  // no __metadata__
    std::vector<uint8_t> b(8);
    const uint64_t n = text.size();
    std::memcpy(b.data(), &n, 8);
    b.insert(b.end(), text.begin(), text.end());
    b.insert(b.end(), m.data.begin(), m.data.end());
    expect_error(b, {"__metadata__.halibit", "is missing"});
}

TEST(ModelFile, OffsetsOutOfRange) {
    ModelBytes m = valid_model();
    m.header["fc.weight"]["data_offsets"] = {m.data.size() - 6, m.data.size() + 10};
    expect_error(m.bytes(), {"fc.weight", "data_offsets", "outside the data section"});
}

TEST(ModelFile, OffsetsOverlap) {
    ModelBytes m = valid_model();
    m.header["fc.weight"]["data_offsets"] = {0, 6};  // inside conv.weight
    expect_error(m.bytes(), {"data_offsets", "overlaps tensor", "conv.weight", "fc.weight"});
}

TEST(ModelFile, DtypeMismatch) {
    ModelBytes m = valid_model();
    m.header["conv.bias"]["dtype"] = "I32";  // 24 bytes no longer match [3] x 4
    expect_error(m.bytes(), {"conv.bias", "do not match dtype I32"});
    ModelBytes u = valid_model();
    u.header["conv.weight"]["dtype"] = "F16";
    expect_error(u.bytes(), {"tensors['conv.weight'].dtype", "unsupported dtype 'F16'"});
}

TEST(ModelFile, ShapeMismatch) {
    ModelBytes m = valid_model();
    m.header["conv.weight"]["shape"] = {3, 3, 1, 3};  // same bytes, wrong layout
    expect_error(m.bytes(), {"layer 'conv'", "field 'weights.tensor'", "has shape [3,3,1,3], expected [3, 3, 3, 1]"});
    ModelBytes o = valid_model();
    o.graph["tensors"]["t1"]["shape"] = {3, 3, 3};
    expect_error(o.bytes(), {"layer 'conv'", "field 'output'", "does not match the convolution"});
}

TEST(ModelFile, UnsupportedBitsOrEncoding) {
    ModelBytes m = valid_model();
    m.graph["layers"][0]["weights"]["encoding"] = "ternary";
    expect_error(m.bytes(), {"layer 'conv'", "weights.encoding", "unknown encoding 'ternary'"});
    ModelBytes b = valid_model();
    b.graph["layers"][0]["weights"]["encoding"] = "odd";
    b.graph["layers"][0]["weights"]["bits"] = 5;
    expect_error(b.bytes(), {"layer 'conv'", "weights.bits", "5 is not supported for encoding 'odd'"});
    ModelBytes v = valid_model();
    v.graph["layers"][0]["weights"]["encoding"] = "binary";
    v.graph["layers"][0]["weights"]["bits"] = 1;
    expect_error(v.bytes(), {"layer 'conv'", "weights.tensor", "is not a 1-bit 'binary' weight"});
    ModelBytes a = valid_model();
    a.graph["tensors"]["t1"]["bits"] = 9;
    expect_error(a.bytes(), {"tensors.t1.bits", "out of range"});
}

TEST(ModelFile, UndefinedTensor) {
    ModelBytes m = valid_model();
    m.graph["layers"][1]["inputs"] = {"t7"};
    expect_error(m.bytes(), {"layer 'pool'", "field 'inputs'", "undefined tensor 't7'"});
    ModelBytes w = valid_model();
    w.graph["layers"][0]["weights"]["tensor"] = "missing.weight";
    expect_error(w.bytes(), {"layer 'conv'", "weights.tensor", "'missing.weight' that the file does not contain"});
    ModelBytes order = valid_model();
    std::swap(order.graph["layers"][0], order.graph["layers"][1]);
    expect_error(order.bytes(), {"layer 'pool'", "reads tensor 't1' before any layer writes it"});
}

TEST(ModelFile, ShapeProductOverflow) {
    ModelBytes m = valid_model();
    m.header["conv.weight"]["shape"] = {int64_t(1) << 20, int64_t(1) << 20, 4, 1};
    expect_error(m.bytes(), {"conv.weight", "shape", "overflows"});
    ModelBytes t = valid_model();
    t.graph["tensors"]["t1"]["shape"] = {65536, 65536, 3};
    expect_error(t.bytes(), {"tensors.t1.shape", "elements"});
}

TEST(ModelFile, UnsupportedVersion) {
    ModelBytes m = valid_model();
    m.graph["format_version"] = 2;
    expect_error(m.bytes(), {"format_version", "2 is not supported"});
}

TEST(ModelFile, WrongJsonTypes) {
    ModelBytes m = valid_model();
    m.graph["layers"][0]["stride"] = "2";
    expect_error(m.bytes(), {"layer 'conv'", "field 'stride'", "must be an integer"});
    ModelBytes k = valid_model();
    k.graph["layers"][0].erase("kernel");
    expect_error(k.bytes(), {"layer 'conv'", "field 'kernel'", "is missing"});
}

}  // namespace
}  // namespace halibit
