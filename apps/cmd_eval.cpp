// `halibit eval MODEL --data DIR`: top-1 accuracy, confusion matrix and throughput on an IDX
// dataset (Fashion-MNIST's t10k split by default).
#include <algorithm>
#include <chrono>
#include <iostream>

#include "cli.h"
#include "halibit/error.h"
#include "halibit/idx.h"
#include "halibit/npy.h"

namespace halibit::cli {

int cmd_eval(const EvalOptions& o) {
    const SessionOptions options = o.session.options();
    const auto model = Model::load(o.model);
    const TensorSpec& in = model->input();
    const IdxDataset data = read_idx_dataset(o.data, o.split);

    // [N, H, W] for one channel, or [N, H, W, C]; matching the model input.
    const auto& s = data.images.shape;
    const int64_t c = s.size() == 4 ? s[3] : 1;
    if (s.size() > 4 || s[1] != in.h || s[2] != in.w || c != in.c)
        throw Error(data.images_path + ": images are " + list_string(s) + ", the input of " + o.model + " is " +
                    shape_string(in) + " (H x W x C)");
    const int64_t classes = model->output().elements();
    const int64_t n = o.limit > 0 ? std::min<int64_t>(o.limit, s[0]) : s[0];
    for (int64_t i = 0; i < n; i++)
        if (data.labels.data[size_t(i)] >= classes)
            throw Error(data.labels_path + ": label " + std::to_string(data.labels.data[size_t(i)]) + " of image " +
                        std::to_string(i) + " is not a class of " + o.model + " (" + std::to_string(classes) +
                        " classes)");

    Session session(model, options);
    prepare_and_note(session, int(std::max<int64_t>(1, std::min<int64_t>(o.batch, n))));
    const size_t image_bytes = size_t(in.elements());
    std::vector<uint8_t> predictions(static_cast<size_t>(n));
    std::vector<int64_t> confusion(size_t(classes * classes), 0);
    Progress progress(n, "eval");
    double seconds = 0;
    for (int64_t i = 0; i < n; i += o.batch) {
        const int b = int(std::min<int64_t>(o.batch, n - i));
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<int32_t> y = session.run(data.images.data.data() + size_t(i) * image_bytes, b);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (int k = 0; k < b; k++) {
            const int32_t* row = y.data() + size_t(k) * classes;
            const int64_t best = std::max_element(row, row + classes) - row;  // first maximum on ties
            predictions[size_t(i + k)] = uint8_t(best);
            confusion[size_t(data.labels.data[size_t(i + k)] * classes + best)]++;
        }
        progress.update(i + b);
    }
    if (!o.predictions.empty()) write_npy(o.predictions, "u1", {n}, predictions.data());

    int64_t correct = 0;
    for (int64_t k = 0; k < classes; k++) correct += confusion[size_t(k * classes + k)];
    const auto& labels = model->labels();
    auto label = [&](int64_t k) { return size_t(k) < labels.size() ? labels[size_t(k)] : std::to_string(k); };

    std::cout << "model    " << o.model << " (" << model->name() << ")\n"
              << "data     " << data.images_path << " (" << n << " images)\n"
              << "top-1    " << format_fixed(100.0 * correct / n, 2) << "% (" << correct << " / " << n << ")\n"
              << "speed    " << format_fixed(n / seconds, 0) << " images/s (batch " << o.batch << ", "
              << options.threads << " thread" << (options.threads > 1 ? "s" : "") << ", "
              << isa_name(resolved_isa(options.isa)) << ")\n\n"
              << "confusion matrix (rows: true class, columns: predicted class)\n";
    std::vector<Table::Column> cols = {{"true \\ predicted"}};
    for (int64_t k = 0; k < classes; k++) cols.push_back({std::to_string(k), true});
    cols.push_back({"recall", true});
    Table t(cols);
    for (int64_t r = 0; r < classes; r++) {
        std::vector<std::string> row = {std::to_string(r) + " " + label(r)};
        int64_t total = 0;
        for (int64_t k = 0; k < classes; k++) {
            row.push_back(std::to_string(confusion[size_t(r * classes + k)]));
            total += confusion[size_t(r * classes + k)];
        }
        row.push_back(total ? format_fixed(100.0 * confusion[size_t(r * classes + r)] / total, 1) + "%" : "-");
        t.add(row);
    }
    std::cout << t.str();
    return 0;
}

}  // namespace halibit::cli
