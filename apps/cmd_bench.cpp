// `halibit bench MODEL`: end-to-end latency and a per-layer profile (Session::profile()) on
// random input.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "halibit/error.h"

namespace halibit::cli {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t h = v.size() / 2;
    return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

// "\rhalibit bench: run 7/23" on a terminal, once the benchmark has taken more than a second.
}  // namespace

int cmd_bench(const BenchOptions& o) {
    const SessionOptions options = o.session.options();
    const auto model = Model::load(o.model);
    const TensorSpec& in = model->input();

    std::vector<uint8_t> images(size_t(o.batch) * size_t(in.elements()));
    std::mt19937 rng(o.seed);
    std::uniform_int_distribution<int> code(0, (1 << in.bits) - 1);
    for (auto& b : images) b = uint8_t(code(rng));

    Session session(model, options);
    const auto prepare_start = Clock::now();
    prepare_and_note(session, o.batch);
    const double prepare_s = std::chrono::duration<double>(Clock::now() - prepare_start).count();

    const size_t layers = session.profile().size();
    std::vector<std::vector<double>> layer_s(layers);
    std::vector<double> total_s;
    Progress progress(o.warmup + o.repeat, "halibit bench: run");
    for (int r = 0; r < o.warmup + o.repeat; r++) {
        const auto start = Clock::now();
        session.run(images.data(), o.batch);
        const double s = std::chrono::duration<double>(Clock::now() - start).count();
        if (r >= o.warmup) {
            total_s.push_back(s);
            const auto& p = session.profile();
            for (size_t i = 0; i < layers && i < p.size(); i++) layer_s[i].push_back(p[i].seconds);
        }
        progress.update(r + 1);
    }

    const auto& profile = session.profile();
    std::vector<double> layer_median(layers);
    double layer_sum = 0;
    int64_t macs = 0;
    for (size_t i = 0; i < layers; i++) {
        layer_median[i] = median(layer_s[i]);
        layer_sum += layer_median[i];
        macs += profile[i].macs;
    }
    const double median_s = median(total_s);
    const double min_s = *std::min_element(total_s.begin(), total_s.end());
    const double gmacs_per_s = median_s > 0 ? macs / median_s / 1e9 : 0;
    const int64_t rss = peak_rss_bytes();
    const Isa isa = resolved_isa(options.isa);
    std::string isa_text = isa_name(options.isa);
    if (options.isa == Isa::automatic) isa_text += std::string(" (") + isa_name(isa) + ")";

    std::ostream& out = std::cout;
    out << "model:   " << model->name() << " (" << o.model << ")\n";
    out << "session: isa " << isa_text << ", threads " << options.threads << ", kernels "
        << kernel_choice_name(options.kernels) << ", batch " << o.batch << ", " << o.repeat << " repeats after "
        << o.warmup << " warmup\n\n";

    Table table({{"#", true},
                 {"layer"},
                 {"op"},
                 {"kernel"},
                 {"ran"},
                 {"median ms", true},
                 {"%", true},
                 {"MACs", true},
                 {"GMAC/s", true}});
    for (size_t i = 0; i < layers; i++) {
        const LayerProfile& p = profile[i];
        const double ms = layer_median[i] * 1e3;
        table.add({std::to_string(i), p.name, p.op, p.kernel, p.implementation, format_fixed(ms, 3),
                   layer_sum > 0 ? format_fixed(100 * layer_median[i] / layer_sum, 1) : "-",
                   p.macs ? human_count(p.macs) : "-",
                   p.macs && layer_median[i] > 0 ? format_fixed(p.macs / layer_median[i] / 1e9, 1) : "-"});
    }
    table.rule();
    table.add({"", "sum of layers", "", "", "", format_fixed(layer_sum * 1e3, 3), "100.0", human_count(macs),
               layer_sum > 0 ? format_fixed(macs / layer_sum / 1e9, 1) : "-"});
    out << table.str() << "\n";
    out << "latency:  median " << format_fixed(median_s * 1e3, 3) << " ms, min " << format_fixed(min_s * 1e3, 3)
        << " ms per batch of " << o.batch << " (" << format_fixed(o.batch / median_s, 1) << " images/s)\n";
    out << "compute:  " << format_fixed(gmacs_per_s, 2) << " GMAC/s (" << format_fixed(macs / 1e9, 4)
        << " GMACs per batch)\n";
    out << "prepare:  " << format_fixed(prepare_s * 1e3, 3) << " ms (weight packing and planning)\n";
    out << "memory:   arena " << session.arena_bytes() << " bytes, packed weights " << session.weight_bytes()
        << " bytes, peak RSS " << rss << " bytes\n";

    if (!o.json.empty()) {
        nlohmann::ordered_json j;  // keys in the documented order
        j["model"] = model->name();
        j["model_file"] = o.model;
        j["isa"] = isa_name(options.isa);
        j["isa_resolved"] = isa_name(isa);
        j["threads"] = options.threads;
        j["kernels"] = kernel_choice_name(options.kernels);
        j["batch"] = o.batch;
        j["repeat"] = o.repeat;
        j["warmup"] = o.warmup;
        j["seed"] = o.seed;
        j["latency_ms"] = {{"median", median_s * 1e3}, {"min", min_s * 1e3}};
        j["prepare_ms"] = prepare_s * 1e3;
        j["macs"] = macs;
        j["gmacs_per_s"] = gmacs_per_s;
        j["arena_bytes"] = session.arena_bytes();
        j["weight_bytes"] = session.weight_bytes();
        j["peak_rss_bytes"] = rss;
        j["layers"] = nlohmann::ordered_json::array();
        for (size_t i = 0; i < layers; i++) {
            const LayerProfile& p = profile[i];
            j["layers"].push_back({{"name", p.name},
                                   {"op", p.op},
                                   {"kernel", p.kernel},
                                   {"implementation", p.implementation},
                                   {"macs", p.macs},
                                   {"median_ms", layer_median[i] * 1e3}});
        }
        std::ofstream f(o.json);
        if (!f) throw Error(o.json + ": cannot create");
        f << j.dump(2) << "\n";
        f.close();
        if (!f) throw Error(o.json + ": cannot write");
    }
    return 0;
}

}  // namespace halibit::cli
