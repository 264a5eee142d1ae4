// A loaded, validated model file (docs/model-format.md). Immutable after load, so one Model can
// be shared by many Sessions on many threads.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "halibit/encoding.h"

namespace halibit {

enum class TensorType { codes, int32 };

// An activation tensor of the graph: [h, w, c] per image (batch is chosen at run time).
struct TensorSpec {
    std::string name;
    int h = 0, w = 0, c = 0;
    TensorType type = TensorType::codes;
    int bits = 8;        // codes only
    double scale = 0.0;  // informative
    int64_t elements() const { return int64_t(h) * w * c; }
};

enum class Op { conv, add, max_pool, global_avg_pool, channel_shuffle };
const char* op_name(Op op);

// A tensor stored in the file (weights, multipliers, biases): little-endian, not aligned.
struct StoredTensor {
    std::string name;
    std::string dtype;  // "I8", "U8", "I32", "I64"
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;
    size_t bytes = 0;
    int64_t elements() const;
    // Copies out as int64 (any of the dtypes above).
    std::vector<int64_t> values() const;
};

struct Layer {
    std::string name;
    Op op = Op::conv;
    std::vector<std::string> inputs;
    std::string output;

    // conv, max_pool
    int kernel_h = 1, kernel_w = 1, stride = 1, pad = 0;
    // conv
    int groups = 1;
    // The stored weights [Cout, KH, KW, Cin / groups]: version 1 I8 values, version 2 U8 bit
    // fields; Model::weight_values has them as int8 values either way.
    std::string weights;
    WeightEncoding encoding = WeightEncoding::signed_;
    int weight_bits = 8;
    std::vector<int> levels;  // codebook: the 2^weight_bits levels the stored indices select
    std::vector<int> pad_values;  // one per input channel (all zero by default)
    // conv with a codes output: multiplier I32 [Cout], bias I64 [Cout]
    bool requantize = false;
    std::string multiplier, bias;
    // conv with an int32 output: optional I32 [Cout] added to the accumulators (empty: none;
    // format version 3)
    std::string int32_bias;
    int shift = 0;  // conv, add, global_avg_pool
    // add: multipliers I32 [C] for inputs 0 and 1, bias I64 [C] (in `bias`)
    std::string add_multipliers[2];
    // global_avg_pool
    int64_t pool_multiplier = 0;
    // channel_shuffle
    int shuffle_groups = 1;
};

class Model {
public:
    // Reads and validates `path` (memory-mapped). Throws halibit::Error starting with the path.
    static std::shared_ptr<const Model> load(const std::string& path);
    // The same from bytes in memory; `name` stands for the file in error messages.
    static std::shared_ptr<const Model> from_bytes(std::vector<uint8_t> bytes, const std::string& name);
    ~Model();

    const std::string& file() const { return file_; }
    const std::string& name() const { return name_; }
    const TensorSpec& input() const { return tensors_.at(input_); }
    const TensorSpec& output() const { return tensors_.at(output_); }
    double output_scale() const { return output_scale_; }
    const std::string& color() const { return color_; }
    const std::vector<double>& mean() const { return mean_; }
    const std::vector<double>& std() const { return std_; }
    const std::vector<std::string>& labels() const { return labels_; }
    const std::vector<Layer>& layers() const { return layers_; }
    const std::map<std::string, TensorSpec>& tensors() const { return tensors_; }
    const TensorSpec& tensor(const std::string& name) const { return tensors_.at(name); }
    const std::map<std::string, StoredTensor>& stored() const { return stored_; }
    const StoredTensor& stored(const std::string& name) const { return stored_.at(name); }
    size_t file_bytes() const { return size_; }
    int format_version() const { return format_version_; }
    // A conv layer's weights as int8 values, OHWI [Cout, KH, KW, Cin / groups] (codebook: the
    // levels its indices select); valid while the Model lives.
    const int8_t* weight_values(const Layer& conv) const;

    // Multiply-accumulates per image of one layer (0 for layers that are not convolutions).
    int64_t macs(const Layer& layer) const;
    int64_t macs() const;

private:
    Model() = default;
    void parse();

    std::string file_;
    const uint8_t* bytes_ = nullptr;
    size_t size_ = 0;
    std::vector<uint8_t> owned_;  // from_bytes
    void* mapping_ = nullptr;     // load: mmap

    std::string name_, input_, output_, color_;
    double output_scale_ = 1.0;
    std::vector<double> mean_, std_;
    std::vector<std::string> labels_;
    std::map<std::string, TensorSpec> tensors_;
    std::map<std::string, StoredTensor> stored_;
    std::vector<Layer> layers_;
    int format_version_ = 0;
    std::map<std::string, const int8_t*> weight_values_;  // by layer name: into the file or unpacked_
    std::deque<std::vector<int8_t>> unpacked_;            // version 2 weights as values
};

}  // namespace halibit
