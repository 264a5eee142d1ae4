// `halibit info MODEL`: what the model file holds, one table row per layer.
#include <iostream>

#include "cli.h"

namespace halibit::cli {
namespace {

std::string bits_of(const TensorSpec& t) { return t.type == TensorType::int32 ? "i32" : "a" + std::to_string(t.bits); }

std::string doubles(const std::vector<double>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? ", " : "") + format_fixed(v[i], 3);
    return s + "]";
}

std::string tensor_line(const TensorSpec& t) {
    std::string s = "'" + t.name + "' " + shape_string(t) + " ";
    if (t.type == TensorType::int32) s += "int32";
    else s += "codes " + std::to_string(t.bits) + "-bit";
    return s;
}

}  // namespace

int cmd_info(const InfoOptions& o) {
    const auto model = Model::load(o.model);
    const Model& m = *model;
    std::ostream& out = std::cout;

    out << "model:  " << m.name() << "\n";
    out << "file:   " << m.file() << " (" << m.file_bytes() << " bytes, format version " << m.format_version() << ")\n";
    out << "input:  " << tensor_line(m.input()) << ", color " << m.color();
    if (!m.mean().empty()) out << ", mean " << doubles(m.mean());
    if (!m.std().empty()) out << ", std " << doubles(m.std());
    out << "\n";
    out << "output: " << tensor_line(m.output()) << ", scale " << m.output_scale();
    const auto& labels = m.labels();
    if (labels.empty()) {
        out << ", no labels\n";
    } else {
        out << ", " << labels.size() << " labels (";
        for (size_t i = 0; i < labels.size() && i < 5; i++) out << (i ? ", " : "") << labels[i];
        out << (labels.size() > 5 ? ", ...)\n" : ")\n");
    }
    out << "\n";

    Table table({{"#", true},
                 {"layer"},
                 {"op"},
                 {"input"},
                 {"output"},
                 {"kernel"},
                 {"stride", true},
                 {"pad", true},
                 {"groups", true},
                 {"weights"},
                 {"act"},
                 {"params", true},
                 {"stored B", true},
                 {"MACs", true}});
    int64_t params = 0, packed_bits = 0, stored = 0;
    int index = 0;
    for (const Layer& l : m.layers()) {
        const TensorSpec& in = m.tensor(l.inputs.at(0));
        const TensorSpec& res = m.tensor(l.output);
        // Bytes of every stored tensor this layer reads, as they are in the file.
        int64_t layer_bytes = 0;
        for (const std::string* name :
             {&l.weights, &l.multiplier, &l.bias, &l.int32_bias, &l.add_multipliers[0], &l.add_multipliers[1]})
            if (!name->empty() && m.stored().count(*name)) layer_bytes += int64_t(m.stored(*name).bytes);
        stored += layer_bytes;

        std::vector<std::string> row = {std::to_string(index++), l.name, op_name(l.op), shape_string(in),
                                        shape_string(res)};
        const bool windowed = l.op == Op::conv || l.op == Op::max_pool;
        row.push_back(windowed ? std::to_string(l.kernel_h) + "x" + std::to_string(l.kernel_w) : "-");
        row.push_back(windowed ? std::to_string(l.stride) : "-");
        row.push_back(windowed ? std::to_string(l.pad) : "-");
        if (l.op == Op::conv) row.push_back(std::to_string(l.groups));
        else if (l.op == Op::channel_shuffle) row.push_back(std::to_string(l.shuffle_groups));
        else row.push_back("-");
        std::string act = bits_of(in);
        if (l.op == Op::add && l.inputs.size() > 1) act += "+" + bits_of(m.tensor(l.inputs[1]));
        act += "->" + bits_of(res);
        if (l.op == Op::conv) {
            const int64_t n = int64_t(res.c) * l.kernel_h * l.kernel_w * (in.c / l.groups);
            params += n;
            packed_bits += n * l.weight_bits;
            std::string weights = std::string(encoding_name(l.encoding)) + " w" + std::to_string(l.weight_bits);
            if (l.encoding == WeightEncoding::codebook) {
                weights += " {";
                for (size_t i = 0; i < l.levels.size(); i++) weights += (i ? "," : "") + std::to_string(l.levels[i]);
                weights += "}";
            }
            if (!l.int32_bias.empty()) weights += " +bias";
            row.push_back(weights);
            row.push_back(act);
            row.push_back(std::to_string(n));
        } else {
            row.push_back("-");
            row.push_back(act);
            row.push_back("-");
        }
        row.push_back(layer_bytes ? std::to_string(layer_bytes) : "-");
        const int64_t macs = m.macs(l);
        row.push_back(macs ? human_count(macs) : "-");
        table.add(std::move(row));
    }
    out << table.str() << "\n";
    out << "layers:      " << m.layers().size() << "\n";
    out << "parameters:  " << params << " weights (" << (packed_bits + 7) / 8 << " bytes at their bit widths, "
        << stored << " bytes stored with requantization tensors)\n";
    out << "file bytes:  " << m.file_bytes() << "\n";
    out << "GMACs/image: " << format_fixed(m.macs() / 1e9, 4) << "\n";
    return 0;
}

}  // namespace halibit::cli
