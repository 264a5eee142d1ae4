// Model file loading and validation (docs/model-format.md). Everything a later stage relies on
// is checked here, so Session never sees a malformed graph.
#include "halibit/model.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "halibit/error.h"

namespace halibit {
namespace {

using Json = nlohmann::json;

// Version 1 stores weights as int8 values; version 2 stores them bit-packed and adds codebooks;
// version 3 adds the int32 `bias` of convolutions without requantization.
constexpr int kOldestFormatVersion = 1, kNewestFormatVersion = 3;
constexpr int kConvBiasVersion = 3;
constexpr int64_t kMaxElements = int64_t(1) << 31;  // per tensor: sizes stay in int32 indexing
// |accumulator| bound: the kernels' int32 requantization thresholds need one value beyond every
// accumulator (generators/output_stage.h).
constexpr int64_t kAccumulatorLimit = int64_t(std::numeric_limits<int32_t>::max()) - 1;
// The format nests a few levels deep; deeper JSON is refused while it is parsed (printing a
// value in a message recurses once per level: 200,000 '[' overflowed the stack).
constexpr int kMaxJsonDepth = 32;

// Where in the model a check is: file, layer, field, for messages.
struct Where {
    std::string file, layer;
    [[noreturn]] void fail(const std::string& field, const std::string& what) const {
        std::string m = file + ": ";
        if (!layer.empty()) m += "layer '" + layer + "': ";
        if (!field.empty()) m += "field '" + field + "': ";
        throw Error(m + what);
    }
};

const Json& member(const Json& obj, const char* key, const Where& at, const std::string& prefix = "") {
    const std::string field = prefix + key;
    if (!obj.is_object()) at.fail(prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1), "is not a JSON object");
    auto it = obj.find(key);
    if (it == obj.end()) at.fail(field, "is missing");
    return *it;
}

// A JSON value as shown in a message: one line of at most 60 characters.
std::string shown(const Json& v) {
    std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

Json parse_json(const uint8_t* begin, const uint8_t* end, const Where& at, const std::string& field) {
    try {
        return Json::parse(begin, end, [&](int depth, Json::parse_event_t, Json&) {
            if (depth > kMaxJsonDepth)
                at.fail(field, std::string(field.empty() ? "header " : "") + "nests deeper than " +
                                   std::to_string(kMaxJsonDepth) + " levels");
            return true;
        });
    } catch (const Json::exception& e) {
        at.fail(field, std::string(field.empty() ? "header " : "") + "is not valid JSON: " + e.what());
    }
}

// |a| * |m| + |b| + r (a >= 0) fits in int64: a requantization or residual add of any input.
bool fits_int64(int64_t a, int64_t m, int64_t b, int64_t r, __int128 more = 0) {
    auto abs128 = [](int64_t v) { return v < 0 ? -__int128(v) : __int128(v); };
    return __int128(a) * abs128(m) + abs128(b) + r + more <= std::numeric_limits<int64_t>::max();
}

int64_t integer(const Json& v, const std::string& field, const Where& at, int64_t lo, int64_t hi) {
    if (!v.is_number_integer()) at.fail(field, "must be an integer, found " + shown(v));
    const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())
                          ? std::numeric_limits<int64_t>::max()
                          : v.get<int64_t>();
    if (x < lo || x > hi)
        at.fail(field, std::to_string(x) + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return x;
}

int get_int(const Json& obj, const char* key, const Where& at, int64_t lo, int64_t hi, const std::string& prefix = "") {
    return int(integer(member(obj, key, at, prefix), prefix + key, at, lo, hi));
}

std::string get_string(const Json& obj, const char* key, const Where& at, const std::string& prefix = "") {
    const Json& v = member(obj, key, at, prefix);
    if (!v.is_string()) at.fail(prefix + key, "must be a string, found " + shown(v));
    return v.get<std::string>();
}

double get_number(const Json& v, const std::string& field, const Where& at) {
    if (!v.is_number()) at.fail(field, "must be a number, found " + shown(v));
    return v.get<double>();
}

size_t dtype_size(const std::string& dtype) {
    if (dtype == "I8" || dtype == "U8") return 1;
    if (dtype == "I32") return 4;
    if (dtype == "I64") return 8;
    return 0;
}

// [kh, kw] or a single integer.
void get_kernel(const Json& obj, Layer& l, const Where& at) {
    const Json& k = member(obj, "kernel", at);
    if (k.is_number_integer()) {
        l.kernel_h = l.kernel_w = int(integer(k, "kernel", at, 1, 15));
    } else if (k.is_array() && k.size() == 2) {
        l.kernel_h = int(integer(k[0], "kernel[0]", at, 1, 15));
        l.kernel_w = int(integer(k[1], "kernel[1]", at, 1, 15));
    } else {
        at.fail("kernel", "must be [KH, KW], found " + shown(k));
    }
}

WeightEncoding parse_encoding(const std::string& s, const Where& at, const std::string& field) {
    if (s == "binary") return WeightEncoding::binary;
    if (s == "signed") return WeightEncoding::signed_;
    if (s == "odd") return WeightEncoding::odd;
    if (s == "codebook") return WeightEncoding::codebook;
    at.fail(field, "unknown encoding '" + s + "' (binary, signed, odd or codebook)");
}

// Version 2 weights: `count` fields of `bits` bits, field i at bits [i * bits, (i + 1) * bits) of
// the byte string read as one little-endian number. The one place the C++ side unpacks them.
int64_t packed_weight_bytes(int64_t count, int bits) { return (count * bits + 7) / 8; }

std::vector<int8_t> unpack_weights(const uint8_t* data, int64_t count, int bits, WeightEncoding e,
                                   const std::vector<int>& levels) {
    std::vector<int8_t> values(static_cast<size_t>(count));
    const uint32_t mask = (1u << bits) - 1;
    for (int64_t i = 0; i < count; i++) {
        const int64_t bit = i * bits;
        // A field spans at most two bytes (bits <= 8).
        uint32_t window = data[bit / 8];
        if ((bit % 8) + bits > 8) window |= uint32_t(data[bit / 8 + 1]) << 8;
        const uint32_t field = (window >> (bit % 8)) & mask;
        values[size_t(i)] = int8_t(e == WeightEncoding::codebook ? levels[field] : decode_weight(e, bits, field));
    }
    return values;
}

int64_t read_le(const uint8_t* p, size_t size) {
    switch (size) {
    case 1: return int8_t(p[0]);
    case 4: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case 8: { int64_t v; std::memcpy(&v, p, 8); return v; }
    }
    return 0;
}

}  // namespace

const char* op_name(Op op) {
    switch (op) {
    case Op::conv: return "conv";
    case Op::add: return "add";
    case Op::max_pool: return "max_pool";
    case Op::global_avg_pool: return "global_avg_pool";
    case Op::channel_shuffle: return "channel_shuffle";
    }
    return "?";
}

int64_t StoredTensor::elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::vector<int64_t> StoredTensor::values() const {
    const size_t size = dtype_size(dtype);
    std::vector<int64_t> v(bytes / size);
    for (size_t i = 0; i < v.size(); i++) v[i] = dtype == "U8" ? data[i] : read_le(data + i * size, size);
    return v;
}

Model::~Model() {
    if (mapping_) munmap(mapping_, size_);
}

std::shared_ptr<const Model> Model::load(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        throw Error(path + ": not a regular file");
    }
    std::shared_ptr<Model> m(new Model());
    m->file_ = path;
    m->size_ = size_t(st.st_size);
    if (m->size_ > 0) {
        void* p = mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            throw Error(path + ": cannot map: " + std::strerror(errno));
        }
        m->mapping_ = p;
        m->bytes_ = static_cast<const uint8_t*>(p);
    }
    close(fd);
    m->parse();
    return m;
}

std::shared_ptr<const Model> Model::from_bytes(std::vector<uint8_t> bytes, const std::string& name) {
    std::shared_ptr<Model> m(new Model());
    m->file_ = name;
    m->owned_ = std::move(bytes);
    m->bytes_ = m->owned_.data();
    m->size_ = m->owned_.size();
    m->parse();
    return m;
}

const int8_t* Model::weight_values(const Layer& l) const {
    auto it = weight_values_.find(l.name);
    if (l.op != Op::conv || it == weight_values_.end()) throw Error(file_ + ": layer '" + l.name + "' has no weights");
    return it->second;
}

int64_t Model::macs(const Layer& l) const {
    if (l.op != Op::conv) return 0;
    const TensorSpec& out = tensors_.at(l.output);
    const TensorSpec& in = tensors_.at(l.inputs[0]);
    return out.elements() * l.kernel_h * l.kernel_w * (in.c / l.groups);
}

int64_t Model::macs() const {
    int64_t total = 0;  // saturates: layers may share one weight tensor, so a small file can declare any count
    for (const Layer& l : layers_)
        if (__builtin_add_overflow(total, macs(l), &total)) return std::numeric_limits<int64_t>::max();
    return total;
}

void Model::parse() {
    Where at{file_, ""};
    // Container: header length, JSON header, data.
    if (size_ < 8) at.fail("", "truncated: " + std::to_string(size_) + " bytes, a model file starts with an 8-byte header length");
    uint64_t header_len;
    std::memcpy(&header_len, bytes_, 8);
    if (header_len > size_ - 8)
        at.fail("", "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                        std::to_string(size_) + " bytes)");
    const Json header = parse_json(bytes_ + 8, bytes_ + 8 + header_len, at, "");
    if (!header.is_object()) at.fail("", "header is not a JSON object");
    const uint8_t* data = bytes_ + 8 + header_len;
    const uint64_t data_size = size_ - 8 - header_len;

    // Stored tensors: dtype, shape, offsets in range and not overlapping.
    std::vector<std::tuple<uint64_t, uint64_t, std::string>> ranges;  // begin, end, tensor
    for (auto it = header.begin(); it != header.end(); ++it) {
        if (it.key() == "__metadata__") continue;
        const std::string prefix = "tensors['" + it.key() + "'].";
        StoredTensor t;
        t.name = it.key();
        t.dtype = get_string(*it, "dtype", at, prefix);
        if (!dtype_size(t.dtype)) at.fail(prefix + "dtype", "unsupported dtype '" + t.dtype + "' (I8, U8, I32, I64)");
        const Json& shape = member(*it, "shape", at, prefix);
        if (!shape.is_array() || shape.size() > 8) at.fail(prefix + "shape", "must be a list of at most 8 sizes");
        int64_t elements = 1;
        for (size_t d = 0; d < shape.size(); d++) {
            const int64_t s = integer(shape[d], prefix + "shape", at, 0, kMaxElements);
            if (s && elements > kMaxElements / s)
                at.fail(prefix + "shape", "the product of " + shape.dump() + " overflows (more than 2^31 elements)");
            elements *= s;
            t.shape.push_back(s);
        }
        const Json& off = member(*it, "data_offsets", at, prefix);
        if (!off.is_array() || off.size() != 2) at.fail(prefix + "data_offsets", "must be [begin, end]");
        const int64_t begin = integer(off[0], prefix + "data_offsets", at, 0, std::numeric_limits<int64_t>::max());
        const int64_t end = integer(off[1], prefix + "data_offsets", at, 0, std::numeric_limits<int64_t>::max());
        if (begin > end || uint64_t(end) > data_size)
            at.fail(prefix + "data_offsets", "[" + std::to_string(begin) + ", " + std::to_string(end) +
                                                 "] is outside the data section (" + std::to_string(data_size) + " bytes)");
        t.bytes = size_t(end - begin);
        if (t.bytes != size_t(elements) * dtype_size(t.dtype))
            at.fail(prefix + "data_offsets", std::to_string(t.bytes) + " bytes do not match dtype " + t.dtype + " and shape " +
                                                 shape.dump());
        t.data = data + begin;
        if (t.bytes) ranges.emplace_back(uint64_t(begin), uint64_t(end), t.name);
        stored_[t.name] = std::move(t);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); i++)
        if (std::get<0>(ranges[i]) < std::get<1>(ranges[i - 1]))
            at.fail("tensors['" + std::get<2>(ranges[i]) + "'].data_offsets",
                    "overlaps tensor '" + std::get<2>(ranges[i - 1]) + "'");

    // The graph.
    if (!header.contains("__metadata__") || !header["__metadata__"].is_object() ||
        !header["__metadata__"].contains("halibit"))
        at.fail("__metadata__.halibit", "is missing: not a halibit model (a plain safetensors file?)");
    const Json& graph_string = header.at("__metadata__").at("halibit");
    if (!graph_string.is_string()) at.fail("__metadata__.halibit", "must be a string holding the graph JSON");
    const std::string& graph_text = graph_string.get_ref<const std::string&>();
    const auto* graph_bytes = reinterpret_cast<const uint8_t*>(graph_text.data());
    const Json g = parse_json(graph_bytes, graph_bytes + graph_text.size(), at, "__metadata__.halibit");
    const int version = get_int(g, "format_version", at, 0, 1 << 30);
    if (version < kOldestFormatVersion || version > kNewestFormatVersion)
        at.fail("format_version", std::to_string(version) + " is not supported (this build reads versions " +
                                      std::to_string(kOldestFormatVersion) + " to " + std::to_string(kNewestFormatVersion) + ")");
    format_version_ = version;
    name_ = g.contains("name") ? get_string(g, "name", at) : "";

    // Activation tensors.
    const Json& tensors = member(g, "tensors", at);
    if (!tensors.is_object()) at.fail("tensors", "must be an object");
    for (auto it = tensors.begin(); it != tensors.end(); ++it) {
        const std::string prefix = "tensors." + it.key() + ".";
        TensorSpec t;
        t.name = it.key();
        const Json& shape = member(*it, "shape", at, prefix);
        if (!shape.is_array() || shape.size() != 3) at.fail(prefix + "shape", "must be [H, W, C], found " + shown(shape));
        t.h = int(integer(shape[0], prefix + "shape", at, 1, 1 << 16));
        t.w = int(integer(shape[1], prefix + "shape", at, 1, 1 << 16));
        t.c = int(integer(shape[2], prefix + "shape", at, 1, 1 << 20));
        if (t.elements() > kMaxElements / 4)
            at.fail(prefix + "shape", shape.dump() + " has more than 2^29 elements per image");
        const std::string type = get_string(*it, "type", at, prefix);
        if (type == "codes") {
            t.type = TensorType::codes;
            t.bits = get_int(*it, "bits", at, 1, 8, prefix);
        } else if (type == "int32") {
            t.type = TensorType::int32;
            t.bits = 32;
        } else {
            at.fail(prefix + "type", "unknown type '" + type + "' (codes or int32)");
        }
        if (it->contains("scale")) t.scale = get_number((*it)["scale"], prefix + "scale", at);
        tensors_[t.name] = t;
    }

    // Input and output.
    const Json& input = member(g, "input", at);
    input_ = get_string(input, "tensor", at, "input.");
    if (!tensors_.count(input_)) at.fail("input.tensor", "names an undefined tensor '" + input_ + "'");
    const TensorSpec& in = tensors_[input_];
    if (in.type != TensorType::codes || in.bits != 8) at.fail("input.tensor", "the input must be 8-bit codes");
    color_ = input.contains("color") ? get_string(input, "color", at, "input.") : (in.c == 1 ? "gray" : "rgb");
    if (color_ != "gray" && color_ != "rgb") at.fail("input.color", "must be 'gray' or 'rgb', found '" + color_ + "'");
    if ((color_ == "gray") != (in.c == 1) || (color_ == "rgb" && in.c != 3))
        at.fail("input.color", "'" + color_ + "' does not match " + std::to_string(in.c) + " input channels");
    for (const char* key : {"mean", "std"}) {
        std::vector<double>& v = key[0] == 'm' ? mean_ : std_;
        if (!input.contains(key)) {
            v.assign(in.c, key[0] == 'm' ? 0.0 : 1.0);
            continue;
        }
        const Json& a = input[key];
        if (!a.is_array() || int(a.size()) != in.c)
            at.fail(std::string("input.") + key, "must list one number per input channel (" + std::to_string(in.c) + ")");
        for (const Json& x : a) v.push_back(get_number(x, std::string("input.") + key, at));
    }
    const Json& output = member(g, "output", at);
    output_ = get_string(output, "tensor", at, "output.");
    if (!tensors_.count(output_)) at.fail("output.tensor", "names an undefined tensor '" + output_ + "'");
    const TensorSpec& out = tensors_[output_];
    if (out.type != TensorType::int32 || out.h != 1 || out.w != 1)
        at.fail("output.tensor", "the output must be an int32 tensor of shape [1, 1, classes]");
    if (output.contains("scale")) output_scale_ = get_number(output["scale"], "output.scale", at);
    if (g.contains("labels")) {
        const Json& labels = g["labels"];
        if (!labels.is_array() || (!labels.empty() && int(labels.size()) != out.c))
            at.fail("labels", "must list one name per class (" + std::to_string(out.c) + ") or none");
        for (const Json& l : labels) {
            if (!l.is_string()) at.fail("labels", "must be strings");
            labels_.push_back(l.get<std::string>());
        }
    }

    // Layers, in topological order.
    const Json& layers = member(g, "layers", at);
    if (!layers.is_array() || layers.empty()) at.fail("layers", "must be a non-empty list");
    std::set<std::string> defined = {input_}, names;
    // The largest |value| each tensor can hold for any input, for the int32 and int64 range
    // checks (the kernels accumulate in int32, requantize and add in int64).
    std::map<std::string, int64_t> bound = {{input_, 255}};
    for (size_t li = 0; li < layers.size(); li++) {
        const Json& j = layers[li];
        Where lat{file_, "#" + std::to_string(li)};
        Layer l;
        l.name = get_string(j, "name", lat);
        lat.layer = l.name;
        if (!names.insert(l.name).second) lat.fail("name", "is used by an earlier layer");
        const std::string op = get_string(j, "op", lat);
        if (op == "conv") l.op = Op::conv;
        else if (op == "add") l.op = Op::add;
        else if (op == "max_pool") l.op = Op::max_pool;
        else if (op == "global_avg_pool") l.op = Op::global_avg_pool;
        else if (op == "channel_shuffle") l.op = Op::channel_shuffle;
        else lat.fail("op", "unknown op '" + op + "' (conv, add, max_pool, global_avg_pool, channel_shuffle)");

        const Json& inputs = member(j, "inputs", lat);
        const size_t want = l.op == Op::add ? 2 : 1;
        if (!inputs.is_array() || inputs.size() != want)
            lat.fail("inputs", "must list " + std::to_string(want) + " tensor name" + (want > 1 ? "s" : ""));
        for (const Json& i : inputs) {
            if (!i.is_string()) lat.fail("inputs", "must be tensor names");
            const std::string name = i.get<std::string>();
            if (!tensors_.count(name)) lat.fail("inputs", "names an undefined tensor '" + name + "'");
            if (!defined.count(name)) lat.fail("inputs", "reads tensor '" + name + "' before any layer writes it");
            l.inputs.push_back(name);
        }
        l.output = get_string(j, "output", lat);
        if (!tensors_.count(l.output)) lat.fail("output", "names an undefined tensor '" + l.output + "'");
        if (!defined.insert(l.output).second) lat.fail("output", "tensor '" + l.output + "' is written twice");
        const TensorSpec& x = tensors_[l.inputs[0]];
        const TensorSpec& y = tensors_[l.output];
        auto require_codes = [&](const TensorSpec& t, const char* field) {
            if (t.type != TensorType::codes) lat.fail(field, "tensor '" + t.name + "' must be codes for " + op);
        };
        // A stored tensor of the given dtype and shape.
        // (`why_dtype`: appended to a dtype mismatch's message.)
        auto stored_tensor = [&](const std::string& name, const std::string& field, const char* dtype,
                                 std::vector<int64_t> shape, const std::string& why_dtype = "") -> const StoredTensor& {
            auto it = stored_.find(name);
            if (it == stored_.end()) lat.fail(field, "names tensor '" + name + "' that the file does not contain");
            if (it->second.dtype != dtype)
                lat.fail(field, "tensor '" + name + "' has dtype " + it->second.dtype + ", expected " + dtype + why_dtype);
            if (it->second.shape != shape) {
                std::string s = "[";
                for (size_t d = 0; d < shape.size(); d++) s += (d ? ", " : "") + std::to_string(shape[d]);
                lat.fail(field, "tensor '" + name + "' has shape " + Json(it->second.shape).dump() + ", expected " + s + "]");
            }
            return it->second;
        };

        switch (l.op) {
        case Op::conv: {
            require_codes(x, "inputs");
            get_kernel(j, l, lat);
            l.stride = get_int(j, "stride", lat, 1, 8);
            l.pad = get_int(j, "pad", lat, 0, 7);
            l.groups = j.contains("groups") ? get_int(j, "groups", lat, 1, 1 << 20) : 1;
            if (x.c % l.groups || y.c % l.groups)
                lat.fail("groups", std::to_string(l.groups) + " does not divide the input (" + std::to_string(x.c) +
                                       ") and output (" + std::to_string(y.c) + ") channels");
            const int oh = (x.h + 2 * l.pad - l.kernel_h) / l.stride + 1, ow = (x.w + 2 * l.pad - l.kernel_w) / l.stride + 1;
            if (x.h + 2 * l.pad < l.kernel_h || x.w + 2 * l.pad < l.kernel_w || oh != y.h || ow != y.w)
                lat.fail("output", "shape [" + std::to_string(y.h) + ", " + std::to_string(y.w) + ", " + std::to_string(y.c) +
                                       "] does not match the convolution of [" + std::to_string(x.h) + ", " +
                                       std::to_string(x.w) + ", " + std::to_string(x.c) + "]");
            const Json& w = member(j, "weights", lat);
            l.weights = get_string(w, "tensor", lat, "weights.");
            l.encoding = parse_encoding(get_string(w, "encoding", lat, "weights."), lat, "weights.encoding");
            l.weight_bits = get_int(w, "bits", lat, 1, 8, "weights.");
            if (!encoding_supports_bits(l.encoding, l.weight_bits))
                lat.fail("weights.bits", std::to_string(l.weight_bits) + " is not supported for encoding '" +
                                             encoding_name(l.encoding) + "' (binary: 1, signed: 2..8, odd: 1..4, codebook: 1..4)");
            if (l.encoding == WeightEncoding::codebook) {
                if (version < 2) lat.fail("weights.encoding", "codebook weights need format version 2");
                const Json& levels = member(w, "levels", lat, "weights.");
                const size_t want_levels = size_t(1) << l.weight_bits;
                if (!levels.is_array() || levels.size() != want_levels)
                    lat.fail("weights.levels", "must list " + std::to_string(want_levels) + " integers (2^bits), found " +
                                                   shown(levels));
                for (const Json& v : levels) l.levels.push_back(int(integer(v, "weights.levels", lat, -128, 127)));
            } else if (w.contains("levels")) {
                lat.fail("weights.levels", std::string("is only for codebook weights, not '") + encoding_name(l.encoding) + "'");
            }
            const int64_t count = int64_t(y.c) * l.kernel_h * l.kernel_w * (x.c / l.groups);
            const int8_t* values = nullptr;
            if (version == 1) {
                const StoredTensor& wt = stored_tensor(l.weights, "weights.tensor", "I8", {y.c, l.kernel_h, l.kernel_w, x.c / l.groups},
                                                       ": format version 1 stores int8 weight values");
                values = reinterpret_cast<const int8_t*>(wt.data);
                for (int64_t i = 0; i < count; i++)
                    if (!encoding_contains(l.encoding, l.weight_bits, values[i]))
                        lat.fail("weights.tensor", "value " + std::to_string(values[i]) + " at index " + std::to_string(i) +
                                                       " is not a " + std::to_string(l.weight_bits) + "-bit '" +
                                                       encoding_name(l.encoding) + "' weight");
            } else {
                const int64_t bytes = packed_weight_bytes(count, l.weight_bits);
                const StoredTensor& wt =
                    stored_tensor(l.weights, "weights.tensor", "U8", {bytes}, ": format version 2 stores bit-packed weights");
                const int used = int(count * l.weight_bits % 8);
                if (used && wt.data[bytes - 1] >> used)
                    lat.fail("weights.tensor", "tensor '" + l.weights + "' has bits set past its " + std::to_string(count) +
                                                   " fields of " + std::to_string(l.weight_bits) + " bits");
                unpacked_.push_back(unpack_weights(wt.data, count, l.weight_bits, l.encoding, l.levels));
                values = unpacked_.back().data();
            }
            weight_values_[l.name] = values;
            if (j.contains("pad_values")) {
                const Json& p = j["pad_values"];
                if (!p.is_array() || int(p.size()) != x.c)
                    lat.fail("pad_values", "must list one code per input channel (" + std::to_string(x.c) + ")");
                for (const Json& v : p) l.pad_values.push_back(int(integer(v, "pad_values", lat, 0, (1 << x.bits) - 1)));
            } else {
                l.pad_values.assign(x.c, 0);
            }
            int64_t amax = (int64_t(1) << x.bits) - 1;
            for (int v : l.pad_values) amax = std::max<int64_t>(amax, v);
            const int64_t per_channel = int64_t(l.kernel_h) * l.kernel_w * (x.c / l.groups);
            std::vector<int64_t> acc_bound(size_t(y.c));
            for (int o = 0; o < y.c; o++) {
                int64_t hi = 0, lo = 0;
                for (int64_t i = o * per_channel; i < (o + 1) * per_channel; i++) {
                    const int w = values[i];
                    (w > 0 ? hi : lo) += w;
                }
                if (hi * amax > kAccumulatorLimit || lo * amax < -kAccumulatorLimit)
                    lat.fail("weights.tensor", "the accumulator of output channel " + std::to_string(o) + " can reach [" +
                                                   std::to_string(lo * amax) + ", " + std::to_string(hi * amax) +
                                                   "], outside +-(2^31 - 2)");
                acc_bound[size_t(o)] = std::max(hi, -lo) * amax;
            }
            bound[l.output] = *std::max_element(acc_bound.begin(), acc_bound.end());
            l.requantize = j.contains("requantize");
            if (l.requantize != (y.type == TensorType::codes))
                lat.fail("requantize", l.requantize ? "is given but the output tensor is int32"
                                                    : "is missing but the output tensor is codes");
            if (l.requantize) {
                const Json& r = j["requantize"];
                l.multiplier = get_string(r, "multiplier", lat, "requantize.");
                l.bias = get_string(r, "bias", lat, "requantize.");
                l.shift = get_int(r, "shift", lat, 0, 62, "requantize.");
                const std::vector<int64_t> m = stored_tensor(l.multiplier, "requantize.multiplier", "I32", {y.c}).values();
                const std::vector<int64_t> b = stored_tensor(l.bias, "requantize.bias", "I64", {y.c}).values();
                const int64_t rounding = l.shift ? int64_t(1) << (l.shift - 1) : 0;
                for (int o = 0; o < y.c; o++)
                    if (!fits_int64(acc_bound[size_t(o)], m[size_t(o)], b[size_t(o)], rounding))
                        lat.fail("requantize", "acc * multiplier + bias can overflow int64 (output channel " +
                                                   std::to_string(o) + ")");
                bound[l.output] = (int64_t(1) << y.bits) - 1;
            }
            if (j.contains("bias")) {
                if (version < kConvBiasVersion)
                    lat.fail("bias", "a conv's int32 bias needs format version " + std::to_string(kConvBiasVersion) +
                                         " (this file is version " + std::to_string(version) + ")");
                if (l.requantize)
                    lat.fail("bias", "is only for convolutions with an int32 output (a requantizing conv has "
                                     "requantize.bias)");
                l.int32_bias = get_string(j, "bias", lat);
                const std::vector<int64_t> b = stored_tensor(l.int32_bias, "bias", "I32", {y.c}).values();
                int64_t most = 0;
                for (int o = 0; o < y.c; o++) {
                    const int64_t reach = acc_bound[size_t(o)] + std::abs(b[size_t(o)]);
                    if (reach > kAccumulatorLimit)
                        lat.fail("bias", "acc + bias of output channel " + std::to_string(o) + " can reach +-" +
                                             std::to_string(reach) + " (acc up to +-" + std::to_string(acc_bound[size_t(o)]) +
                                             ", bias " + std::to_string(b[size_t(o)]) +
                                             "), outside +-(2^31 - 2), the range of int32 accumulators");
                    most = std::max(most, reach);
                }
                bound[l.output] = most;  // what a consumer (add) of this int32 tensor can receive
            }
            break;
        }
        case Op::add: {
            const TensorSpec& x1 = tensors_[l.inputs[1]];
            if (x.h != x1.h || x.w != x1.w || x.c != x1.c || y.h != x.h || y.w != x.w || y.c != x.c)
                lat.fail("inputs", "tensors '" + x.name + "', '" + x1.name + "' and the output must have the same shape");
            require_codes(y, "output");
            const Json& m = member(j, "multipliers", lat);
            if (!m.is_array() || m.size() != 2 || !m[0].is_string() || !m[1].is_string())
                lat.fail("multipliers", "must name two I32 tensors");
            std::vector<int64_t> mv[2];
            for (int i = 0; i < 2; i++) {
                l.add_multipliers[i] = m[i].get<std::string>();
                mv[i] = stored_tensor(l.add_multipliers[i], "multipliers", "I32", {x.c}).values();
            }
            l.bias = get_string(j, "bias", lat);
            const std::vector<int64_t> b = stored_tensor(l.bias, "bias", "I64", {x.c}).values();
            l.shift = get_int(j, "shift", lat, 0, 62);
            const int64_t rounding = l.shift ? int64_t(1) << (l.shift - 1) : 0;
            const int64_t b0 = bound.at(l.inputs[0]), b1 = bound.at(l.inputs[1]);
            for (int c = 0; c < x.c; c++)
                if (!fits_int64(b0, mv[0][size_t(c)], b[size_t(c)], rounding, __int128(b1) * std::abs(mv[1][size_t(c)])))
                    lat.fail("multipliers", "x0 * multiplier0 + x1 * multiplier1 + bias can overflow int64 (channel " +
                                                std::to_string(c) + ")");
            bound[l.output] = (int64_t(1) << y.bits) - 1;
            break;
        }
        case Op::max_pool: {
            require_codes(x, "inputs");
            require_codes(y, "output");
            get_kernel(j, l, lat);
            l.stride = get_int(j, "stride", lat, 1, 8);
            l.pad = get_int(j, "pad", lat, 0, 7);
            if (l.pad >= l.kernel_h || l.pad >= l.kernel_w) lat.fail("pad", "must be smaller than the kernel");
            const int oh = (x.h + 2 * l.pad - l.kernel_h) / l.stride + 1, ow = (x.w + 2 * l.pad - l.kernel_w) / l.stride + 1;
            if (x.h + 2 * l.pad < l.kernel_h || x.w + 2 * l.pad < l.kernel_w || oh != y.h || ow != y.w || y.c != x.c)
                lat.fail("output", "shape does not match the pooling of tensor '" + x.name + "'");
            if (y.bits != x.bits) lat.fail("output", "max_pool keeps the bits of its input");
            bound[l.output] = (int64_t(1) << y.bits) - 1;
            break;
        }
        case Op::global_avg_pool: {
            require_codes(x, "inputs");
            require_codes(y, "output");
            if (y.h != 1 || y.w != 1 || y.c != x.c) lat.fail("output", "must have shape [1, 1, " + std::to_string(x.c) + "]");
            l.pool_multiplier = integer(member(j, "multiplier", lat), "multiplier", lat, -(int64_t(1) << 31), (int64_t(1) << 31) - 1);
            l.shift = get_int(j, "shift", lat, 0, 62);
            if (!fits_int64(x.elements() / x.c * ((int64_t(1) << x.bits) - 1), l.pool_multiplier, 0,
                            l.shift ? int64_t(1) << (l.shift - 1) : 0))
                lat.fail("multiplier", "sum * multiplier can overflow int64");
            bound[l.output] = (int64_t(1) << y.bits) - 1;
            break;
        }
        case Op::channel_shuffle: {
            require_codes(x, "inputs");
            l.shuffle_groups = get_int(j, "groups", lat, 1, 1 << 20);
            if (x.c % l.shuffle_groups) lat.fail("groups", "does not divide the " + std::to_string(x.c) + " channels");
            if (y.h != x.h || y.w != x.w || y.c != x.c || y.type != x.type || y.bits != x.bits)
                lat.fail("output", "must have the shape and bits of the input");
            bound[l.output] = (int64_t(1) << y.bits) - 1;
            break;
        }
        }
        layers_.push_back(std::move(l));
    }
    if (!defined.count(output_)) at.fail("output.tensor", "no layer writes tensor '" + output_ + "'");
    for (const auto& [name, spec] : tensors_)
        if (!defined.count(name)) at.fail("tensors." + name, "is neither the input nor written by a layer");
}

}  // namespace halibit
