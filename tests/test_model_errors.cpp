// Malformed model files: each is refused with a halibit::Error naming the file, and where it
// applies the layer and the field. The valid base model is built here, byte by byte.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <limits>
#include <tuple>

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

// Version 2 of the same model: weights bit-packed (packed here independently of the loader:
// field i at bits [i * bits, (i + 1) * bits) of the bytes as one little-endian number).
std::vector<uint8_t> pack_fields(const std::vector<uint32_t>& fields, int bits) {
    std::vector<uint8_t> out((fields.size() * bits + 7) / 8, 0);
    for (size_t i = 0; i < fields.size(); i++)
        for (int b = 0; b < bits; b++)
            if ((fields[i] >> b) & 1) out[(i * bits + b) / 8] |= uint8_t(1 << ((i * bits + b) % 8));
    return out;
}

void set_packed(ModelBytes& m, const std::string& name, const std::vector<uint32_t>& fields, int bits) {
    const std::vector<uint8_t> p = pack_fields(fields, bits);
    m.header.erase(name);
    m.add_tensor(name, "U8", {int64_t(p.size())}, p.data(), p.size());
}

// conv: the 2-bit signed values -2..1 cycle as fields 2, 3, 0, 1; fc: 4-bit two's complement.
ModelBytes valid_model_v2() {
    ModelBytes m = valid_model();
    m.graph["format_version"] = 2;
    std::vector<uint32_t> conv(27), fc;
    for (size_t i = 0; i < conv.size(); i++) conv[i] = uint32_t((int(i % 4) - 2) & 3);
    for (int v : {1, -2, 3, -4, 5, -6}) fc.push_back(uint32_t(v & 15));
    set_packed(m, "conv.weight", conv, 2);
    set_packed(m, "fc.weight", fc, 4);
    return m;
}

// Version 3: the fc (int32 logits) adds an I32 bias per class.
ModelBytes valid_model_v3(std::vector<int32_t> bias = {1000, -77}) {
    ModelBytes m = valid_model_v2();
    m.graph["format_version"] = 3;
    m.graph["layers"][2]["bias"] = "fc.bias";
    m.add_tensor("fc.bias", "I32", {int64_t(bias.size())}, bias.data(), bias.size() * 4);
    return m;
}

std::vector<int32_t> run_tiny(const std::vector<uint8_t>& bytes) {
    std::vector<uint8_t> image(16);
    for (size_t i = 0; i < image.size(); i++) image[i] = uint8_t(17 * i + 3);
    Session session(Model::from_bytes(bytes, "tiny.halibit"));
    return session.run(image.data(), 1);
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
    for (int v : {0, 4}) {
        ModelBytes m = valid_model();
        m.graph["format_version"] = v;
        expect_error(m.bytes(), {"format_version", std::to_string(v) + " is not supported"});
    }
}

TEST(ModelFile, PackedWeightsGiveTheVersion1Values) {
    const ModelBytes v2 = valid_model_v2();
    auto model = Model::from_bytes(v2.bytes(), "tiny.halibit");
    EXPECT_EQ(model->format_version(), 2);
    const int8_t* conv = model->weight_values(model->layers()[0]);
    for (int i = 0; i < 27; i++) EXPECT_EQ(conv[i], i % 4 - 2) << i;
    const int8_t* fc = model->weight_values(model->layers()[2]);
    EXPECT_EQ(std::vector<int>(fc, fc + 6), std::vector<int>({1, -2, 3, -4, 5, -6}));
    EXPECT_EQ(run_tiny(v2.bytes()), run_tiny(valid_model().bytes()));
    // binary (field 1 = -1) and odd ((w + 2^b - 1) / 2) fields.
    ModelBytes b = valid_model_v2();
    b.graph["layers"][0]["weights"] = {{"tensor", "conv.weight"}, {"encoding", "binary"}, {"bits", 1}};
    std::vector<uint32_t> bits(27);
    for (size_t i = 0; i < 27; i++) bits[i] = i % 3 == 0;
    set_packed(b, "conv.weight", bits, 1);
    ModelBytes o = valid_model_v2();
    o.graph["layers"][0]["weights"] = {{"tensor", "conv.weight"}, {"encoding", "odd"}, {"bits", 3}};
    std::vector<uint32_t> odd(27);
    for (size_t i = 0; i < 27; i++) odd[i] = uint32_t(i % 8);
    set_packed(o, "conv.weight", odd, 3);  // 3-bit fields straddle bytes
    auto mb = Model::from_bytes(b.bytes(), "b.halibit");
    auto mo = Model::from_bytes(o.bytes(), "o.halibit");
    for (int i = 0; i < 27; i++) {
        EXPECT_EQ(mb->weight_values(mb->layers()[0])[i], i % 3 == 0 ? -1 : 1) << i;
        EXPECT_EQ(mo->weight_values(mo->layers()[0])[i], 2 * (i % 8) - 7) << i;
    }
}

// Codebook layers compute what the same values as plain 8-bit weights compute, on every kernel
// choice: the fc (reading 2-bit codes, 2 output channels) runs the table kernels under bitserial,
// the pairwise table under lut (its levels inside the int8 products), conv_u8 under auto (but on
// arm64) and u8; the conv (reading the 8-bit image) conv_u8.
TEST(ModelFile, CodebookWeightsRunTheirLevels) {
    const std::vector<int> levels = {-7, -1, 2, 9};
    ModelBytes cb = valid_model_v2();
    ModelBytes plain = valid_model();  // version 1, the same values as signed 8-bit weights
    cb.graph["tensors"]["t2"]["bits"] = 2;
    plain.graph["tensors"]["t2"]["bits"] = 2;
    std::vector<int8_t> all_values;
    for (const auto& [layer, name, count] : {std::tuple<int, std::string, int>{0, "conv", 27}, {2, "fc", 6}}) {
        cb.graph["layers"][layer]["weights"] = {
            {"tensor", name + ".weight"}, {"encoding", "codebook"}, {"bits", 2}, {"levels", levels}};
        std::vector<uint32_t> index(static_cast<size_t>(count));
        std::vector<int8_t> values(static_cast<size_t>(count));
        for (size_t i = 0; i < index.size(); i++) {
            index[i] = uint32_t((i * 7 + 1) % 4);
            values[i] = int8_t(levels[index[i]]);
        }
        set_packed(cb, name + ".weight", index, 2);
        plain.graph["layers"][layer]["weights"] = {{"tensor", name + ".weight"}, {"encoding", "signed"}, {"bits", 8}};
        plain.header.erase(name + ".weight");
        plain.add_tensor(name + ".weight", "I8", layer ? std::vector<int64_t>{2, 1, 1, 3} : std::vector<int64_t>{3, 3, 3, 1},
                         values.data(), values.size());
        all_values.insert(all_values.end(), values.begin(), values.end());
    }
    auto model = Model::from_bytes(cb.bytes(), "cb.halibit");
    EXPECT_EQ(model->layers()[0].levels, levels);
    const int8_t* conv = model->weight_values(model->layers()[0]);
    const int8_t* fc = model->weight_values(model->layers()[2]);
    EXPECT_EQ(std::vector<int8_t>(conv, conv + 27), std::vector<int8_t>(all_values.begin(), all_values.begin() + 27));
    EXPECT_EQ(std::vector<int8_t>(fc, fc + 6), std::vector<int8_t>(all_values.begin() + 27, all_values.end()));
    std::vector<uint8_t> image(16);
    for (size_t i = 0; i < image.size(); i++) image[i] = uint8_t(29 * i + 5);
    Session reference(Model::from_bytes(plain.bytes(), "plain.halibit"));
    const auto want = reference.run(image.data(), 1);
    for (KernelChoice k : {KernelChoice::automatic, KernelChoice::lut, KernelChoice::u8, KernelChoice::bitserial}) {
        SessionOptions o;
        o.kernels = k;
        Session s(model, o);
        EXPECT_EQ(s.run(image.data(), 1), want) << int(k);
        // The table kernels on the level index's three planes (-7 - 1 - 2 + 9 != 0) under bitserial
        // (and auto on arm64, where they pay), the pairwise table under lut.
        const Isa isa = resolved_isa(Isa::automatic);
        const bool arm = isa == Isa::arm64 || isa == Isa::arm64_dotprod;
        const bool tables = (k == KernelChoice::bitserial && isa != Isa::scalar) || (k == KernelChoice::automatic && arm);
        const bool pairwise = k == KernelChoice::lut;
        EXPECT_EQ(s.profile()[2].kernel, tables     ? "bitserial w2a2 codebook"
                                         : pairwise ? "lut pairwise w2a2 codebook"
                                                    : "u8 w2a2")
            << int(k);
        EXPECT_EQ(s.profile()[0].kernel, "u8 w2a8") << int(k);
        // What ran: conv_u8's full-range or narrow (int16 sums) library, as the codes allow.
        if (tables)
            EXPECT_EQ(s.profile()[2].implementation, "table_conv_w3_int32") << int(k);
        else if (pairwise)
            EXPECT_EQ(s.profile()[2].implementation, "lut_pairwise_int32") << int(k);
        else
            EXPECT_TRUE(s.profile()[2].implementation == "conv_u8_int32" ||
                        s.profile()[2].implementation == "conv_u8_narrow_int32")
                << s.profile()[2].implementation;
        EXPECT_TRUE(s.profile()[0].implementation == "conv_u8_codes" || s.profile()[0].implementation == "conv_u8_narrow_codes")
            << s.profile()[0].implementation;
    }
}

// tests/data holds a version 1 file written by the previous release; fuzz/corpus the same network
// written now (version 2, the same seed): the same weights, the same logits, a third of the bytes.
TEST(ModelFile, Version1FilesStillLoadAndComputeTheSame) {
    auto v1 = Model::load(HALIBIT_V1_MODEL);
    auto v2 = Model::load(HALIBIT_V2_MODEL);
    EXPECT_EQ(v1->format_version(), 1);
    EXPECT_EQ(v2->format_version(), 2);
    EXPECT_LT(v2->file_bytes() * 5, v1->file_bytes() * 2);
    ASSERT_EQ(v1->layers().size(), v2->layers().size());
    for (size_t i = 0; i < v1->layers().size(); i++) {
        const Layer& a = v1->layers()[i];
        if (a.op != Op::conv) continue;
        const int64_t n = int64_t(v1->tensor(a.output).c) * a.kernel_h * a.kernel_w * (v1->tensor(a.inputs[0]).c / a.groups);
        const int8_t* wa = v1->weight_values(a);
        const int8_t* wb = v2->weight_values(v2->layers()[i]);
        EXPECT_EQ(std::vector<int8_t>(wa, wa + n), std::vector<int8_t>(wb, wb + n)) << a.name;
    }
    const int batch = 3;
    std::vector<uint8_t> images(size_t(batch) * v1->input().elements());
    for (size_t i = 0; i < images.size(); i++) images[i] = uint8_t((i * 2654435761u) >> 24);
    Session s1(v1), s2(v2);
    EXPECT_EQ(s1.run(images.data(), batch), s2.run(images.data(), batch));
}

// The fc's bias adds to its accumulators, on every kernel choice: version 3 logits are the version
// 2 model's plus the bias (the golden set's small_resnet_w2a2_bias checks a whole network, with
// biased int32 tensors read by add layers, against the simulator).
TEST(ModelFile, Int32BiasAddsToTheLogits) {
    const std::vector<int32_t> bias = {1000, -77};
    auto biased = Model::from_bytes(valid_model_v3(bias).bytes(), "v3.halibit");
    auto plain = Model::from_bytes(valid_model_v2().bytes(), "v2.halibit");
    EXPECT_EQ(biased->format_version(), 3);
    EXPECT_EQ(biased->layers()[2].int32_bias, "fc.bias");
    EXPECT_EQ(biased->layers()[0].int32_bias, "");
    const int batch = 3;
    std::vector<uint8_t> images(16 * batch);
    for (size_t i = 0; i < images.size(); i++) images[i] = uint8_t(37 * i + 11);
    for (KernelChoice k : {KernelChoice::automatic, KernelChoice::lut, KernelChoice::u8, KernelChoice::bitserial}) {
        SessionOptions o;
        o.kernels = k;
        Session sb(biased, o), sp(plain, o);
        const std::vector<int32_t> want = sp.run(images.data(), batch), got = sb.run(images.data(), batch);
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); i++) EXPECT_EQ(got[i], want[i] + bias[i % 2]) << i << " " << int(k);
        EXPECT_EQ(sb.run(images.data(), batch), got);  // a second run: the bias is added once
    }
    // At the range limit: channel 1's |acc| <= 2550 (weights -4, 5, -6 on codes up to 255).
    const int32_t edge = 2147483646 - 2550;
    auto top = Model::from_bytes(valid_model_v3({0, -edge}).bytes(), "edge.halibit");
    std::vector<uint8_t> white(16, 255);
    Session s(top);
    EXPECT_GE(s.run(white.data(), 1)[1], -2147483646);
}

TEST(ModelFile, MalformedInt32Bias) {
    ModelBytes v2 = valid_model_v3();  // a version 2 file with a bias
    v2.graph["format_version"] = 2;
    expect_error(v2.bytes(), {"layer 'fc'", "field 'bias'", "a conv's int32 bias needs format version 3 (this file is version 2)"});
    ModelBytes rq = valid_model_v3();  // on the requantizing conv
    rq.graph["layers"][0]["bias"] = "fc.bias";
    expect_error(rq.bytes(), {"layer 'conv'", "field 'bias'", "only for convolutions with an int32 output"});
    ModelBytes dtype = valid_model_v3();
    dtype.graph["layers"][2]["bias"] = "conv.bias";  // I64 [3]
    expect_error(dtype.bytes(), {"layer 'fc'", "field 'bias'", "tensor 'conv.bias' has dtype I64, expected I32"});
    ModelBytes shape = valid_model_v3();
    shape.graph["layers"][2]["bias"] = "conv.multiplier";  // I32 [3]
    expect_error(shape.bytes(), {"layer 'fc'", "field 'bias'", "tensor 'conv.multiplier' has shape [3], expected [2]"});
    ModelBytes missing = valid_model_v3();
    missing.graph["layers"][2]["bias"] = "nope";
    expect_error(missing.bytes(), {"layer 'fc'", "field 'bias'", "names tensor 'nope' that the file does not contain"});
    ModelBytes name = valid_model_v3();
    name.graph["layers"][2]["bias"] = 5;
    expect_error(name.bytes(), {"layer 'fc'", "field 'bias'", "must be a string"});
    // |acc| + |bias| beyond 2^31 - 2: channel 0's |acc| <= 1020 (weights 1, -2, 3), channel 1's 2550.
    expect_error(valid_model_v3({2147483646 - 1020 + 1, 0}).bytes(),
                 {"layer 'fc'", "field 'bias'",
                  "acc + bias of output channel 0 can reach +-2147483647 (acc up to +-1020, bias 2147482627), outside "
                  "+-(2^31 - 2)"});
    expect_error(valid_model_v3({0, -(2147483646 - 2550 + 1)}).bytes(),
                 {"layer 'fc'", "field 'bias'", "output channel 1 can reach +-2147483647"});
    Model::from_bytes(valid_model_v3({2147483646 - 1020, -(2147483646 - 2550)}).bytes(), "edge.halibit");
}

// An add reading a biased int32 tensor checks its int64 range with the bias included: `B`
// leaves room for |logits| <= 2550 (the fc's bound without a bias) and no more.
TEST(ModelFile, AddSeesTheBiasedBound) {
    auto with_add = [](std::vector<int32_t> bias) {
        ModelBytes m = valid_model_v3(bias);
        const int32_t mult[2] = {2147483647, 2147483647};
        const int64_t b = std::numeric_limits<int64_t>::max() - int64_t(2) * 2550 * 2147483647;
        const int64_t add_bias[2] = {b, -b};
        m.add_tensor("res.multiplier", "I32", {2}, mult, sizeof mult);
        m.add_tensor("res.bias", "I64", {2}, add_bias, sizeof add_bias);
        m.graph["tensors"]["t3"] = {{"shape", {1, 1, 2}}, {"type", "codes"}, {"bits", 8}};
        m.graph["layers"].push_back({{"name", "res"}, {"op", "add"}, {"inputs", {"logits", "logits"}}, {"output", "t3"},
                                     {"multipliers", {"res.multiplier", "res.multiplier"}}, {"bias", "res.bias"},
                                     {"shift", 0}});
        return m.bytes();
    };
    Model::from_bytes(with_add({0, 0}), "add.halibit");
    expect_error(with_add({0, 1}), {"layer 'res'", "field 'multipliers'", "can overflow int64"});
}

TEST(ModelFile, TensorsNoLayerWrites) {
    ModelBytes m = valid_model();
    m.graph["tensors"]["orphan"] = {{"shape", {1, 1, 1}}, {"type", "codes"}, {"bits", 2}};
    expect_error(m.bytes(), {"field 'tensors.orphan'", "is neither the input nor written by a layer"});
}

TEST(ModelFile, MalformedPackedWeights) {
    ModelBytes dtype = valid_model_v2();  // version 2 with version 1's int8 weights
    const std::vector<int8_t> w(27, 1);
    dtype.header.erase("conv.weight");
    dtype.add_tensor("conv.weight", "I8", {3, 3, 3, 1}, w.data(), w.size());
    expect_error(dtype.bytes(), {"layer 'conv'", "weights.tensor", "dtype I8, expected U8"});
    ModelBytes size = valid_model_v2();  // 27 2-bit fields take 7 bytes, not 8
    set_packed(size, "conv.weight", std::vector<uint32_t>(32, 1), 2);
    expect_error(size.bytes(), {"layer 'conv'", "weights.tensor", "shape [8], expected [7]"});
    ModelBytes tail = valid_model_v2();  // a bit set past the 27 fields (bit 54 of 56)
    std::vector<uint32_t> fields(28, 0);
    fields[27] = 1;
    set_packed(tail, "conv.weight", fields, 2);
    expect_error(tail.bytes(), {"layer 'conv'", "weights.tensor", "bits set past its 27 fields of 2 bits"});
}

TEST(ModelFile, MalformedCodebooks) {
    auto with = [](Json weights, int version = 2) {
        ModelBytes m = valid_model_v2();
        m.graph["format_version"] = version;
        m.graph["layers"][0]["weights"] = weights;
        return m.bytes();
    };
    const Json base = {{"tensor", "conv.weight"}, {"encoding", "codebook"}, {"bits", 2}};
    Json missing = base;
    expect_error(with(missing), {"layer 'conv'", "weights.levels", "is missing"});
    Json three = base;
    three["levels"] = {1, 2, 3};
    expect_error(with(three), {"layer 'conv'", "weights.levels", "must list 4 integers"});
    Json wide = base;
    wide["levels"] = {1, 2, 3, 128};
    expect_error(with(wide), {"layer 'conv'", "weights.levels", "128 is out of range (-128..127)"});
    Json five = base;
    five["bits"] = 5;
    five["levels"] = Json::array();
    expect_error(with(five), {"layer 'conv'", "weights.bits", "5 is not supported for encoding 'codebook'"});
    Json v1 = base;
    v1["levels"] = {1, 2, 3, 4};
    expect_error(with(v1, 1), {"layer 'conv'", "weights.encoding", "codebook weights need format version 2"});
    Json signed_levels = {{"tensor", "conv.weight"}, {"encoding", "signed"}, {"bits", 2}, {"levels", {1, 2, 3, 4}}};
    expect_error(with(signed_levels), {"layer 'conv'", "weights.levels", "only for codebook weights"});
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
