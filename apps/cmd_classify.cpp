// `halibit classify MODEL IMAGE...`: decodes JPEG or PNG images, converts them to the model's
// input (colour, size) and prints the top-k classes with their probabilities and the latency.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>

#include "cli.h"
#include "halibit/error.h"
#include "halibit/image.h"

namespace halibit::cli {

int cmd_classify(const ClassifyOptions& o) {
    const SessionOptions options = o.session.options();
    const auto model = Model::load(o.model);
    const TensorSpec& in = model->input();
    const int64_t classes = model->output().elements();
    const int k = int(std::min<int64_t>(o.top, classes));
    const double scale = model->output_scale();
    const auto& labels = model->labels();

    Session session(model, options);
    prepare_and_note(session, 1);
    for (const std::string& path : o.images) {
        const Image image = read_image(path);
        const std::vector<uint8_t> x = to_model_input(image, in.h, in.w, model->color());
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<int32_t> y = session.run(x.data(), 1);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

        // softmax of logit * scale, computed from the largest logit for stability
        const int32_t top = *std::max_element(y.begin(), y.end());
        std::vector<double> p(static_cast<size_t>(classes));
        double sum = 0;
        for (int64_t c = 0; c < classes; c++) sum += p[size_t(c)] = std::exp((double(y[size_t(c)]) - top) * scale);
        std::vector<int> order(static_cast<size_t>(classes));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return y[size_t(a)] > y[size_t(b)]; });

        std::cout << path << " (" << image.width << "x" << image.height << (image.channels == 1 ? " gray" : " rgb")
                  << ", " << format_fixed(ms, 2) << " ms)\n";
        for (int r = 0; r < k; r++) {
            const int c = order[size_t(r)];
            const std::string percent = format_fixed(100.0 * p[size_t(c)] / sum, 1);
            std::cout << std::string(2 + 5 - std::min<size_t>(5, percent.size()), ' ') << percent << "%  "
                      << (size_t(c) < labels.size() ? labels[size_t(c)] : "class " + std::to_string(c)) << "\n";
        }
    }
    return 0;
}

}  // namespace halibit::cli
