// `halibit run MODEL --input X.npy --output Y.npy`: classifies a batch of images given as uint8
// codes and writes the int32 logits.
#include <algorithm>
#include <cmath>
#include <iostream>

#include "cli.h"
#include "halibit/error.h"
#include "halibit/npy.h"

namespace halibit::cli {
namespace {

std::string numpy_type(const std::string& dtype) {
    if (dtype == "u1") return "uint8";
    if (dtype == "i1") return "int8";
    if (dtype == "i4") return "int32";
    if (dtype == "i8") return "int64";
    if (dtype == "f4") return "float32";
    if (dtype == "f8") return "float64";
    return dtype;
}

}  // namespace

int cmd_run(const RunOptions& o) {
    const SessionOptions options = o.session.options();
    const auto model = Model::load(o.model);
    const TensorSpec& in = model->input();
    const NpyArray x = read_npy(o.input);

    // [N, H, W, C] or [H, W, C], uint8, matching the model input.
    const std::vector<int64_t> hwc = {in.h, in.w, in.c};
    const bool batched = x.shape.size() == 4 && std::equal(hwc.begin(), hwc.end(), x.shape.begin() + 1);
    const bool single = x.shape == hwc;
    if (x.dtype != "u1" || !(batched || single))
        throw Error(o.input + ": expected uint8 [N, " + std::to_string(in.h) + ", " + std::to_string(in.w) + ", " +
                    std::to_string(in.c) + "] or " + list_string(hwc) + " (the input of " + o.model + "), got " +
                    numpy_type(x.dtype) + " " + list_string(x.shape));
    const int64_t n = batched ? x.shape[0] : 1;
    if (n < 1) throw Error(o.input + ": holds no images (shape " + list_string(x.shape) + ")");
    if (n > (int64_t(1) << 31) - 1) throw Error(o.input + ": too many images (" + std::to_string(n) + ")");

    const int64_t classes = model->output().elements();
    const size_t image_bytes = size_t(in.elements());
    std::vector<int32_t> logits(size_t(n * classes));
    Session session(model, options);
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(o.batch, n));
    prepare_and_note(session, int(chunk));
    for (int64_t i = 0; i < n; i += chunk) {
        const int b = int(std::min(chunk, n - i));
        const std::vector<int32_t> y = session.run(x.data.data() + size_t(i) * image_bytes, b);
        std::copy(y.begin(), y.end(), logits.begin() + i * classes);
    }
    write_npy(o.output, "i4", {n, classes}, logits.data());

    // Top-1 per image, with its softmax probability (logit = value * output scale).
    const auto& labels = model->labels();
    const double scale = model->output_scale();
    for (int64_t i = 0; i < n; i++) {
        const int32_t* row = logits.data() + i * classes;
        const int64_t best = std::max_element(row, row + classes) - row;
        std::cout << "image " << i << ": class " << best;
        if (size_t(best) < labels.size()) std::cout << " '" << labels[best] << "'";
        std::cout << ", logit " << row[best];
        if (scale > 0) {
            double sum = 0;
            for (int64_t c = 0; c < classes; c++) sum += std::exp((double(row[c]) - row[best]) * scale);
            std::cout << ", probability " << format_fixed(1.0 / sum, 3);
        }
        std::cout << "\n";
    }
    return 0;
}

}  // namespace halibit::cli
