// halibit-bench-kernels: halibit's kernels and the int8 peers (oneDNN u8s8, XNNPACK qs8) on the
// ResNet-18 layer shapes, batch 1, in one binary so every ratio comes from one run.
//
// Names: conv/<engine>/<layer>/threads:<n>. halibit engines force their target
// (bconv_w1a1_avx512, bitserial_w2a2_avx2, bitserial_w4a4_avx2, u8_w8a8_avx512, lut_w2a2_avx2:
// activation tables, lut_pairwise_w2a2_avx2: DeepGEMM's products, ...); the time of a halibit popcount
// kernel includes packing its input activations, and its output is requantized codes, like
// oneDNN's u8 output (u8_w8a8: uint8 codes in, 8-bit codes out, no packing).
// After the run, a summary prints time(onednn_u8s8) / time(engine) per layer and the geometric
// mean over the four 3x3 layers (the fastest repetition, with --benchmark_repetitions). oneDNN picks its best ISA; ONEDNN_MAX_CPU_ISA=AVX2 gives the
// AVX2 baseline.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "halibit/isa.h"
#include "halibit/kernels.h"
#include "kernel_override.h"
#include "peers.h"

namespace halibit::bench {
namespace {

struct Layer {
    const char* name;
    ConvShape shape;
    bool stem = false;  // 8-bit engines only: the stem reads the 8-bit image
};

const std::vector<Layer>& layers() {
    static const std::vector<Layer> l = {
        {"56x56x64", {56, 56, 64, 64, 3, 1, 1}},
        {"28x28x128", {28, 28, 128, 128, 3, 1, 1}},
        {"14x14x256", {14, 14, 256, 256, 3, 1, 1}},
        {"7x7x512", {7, 7, 512, 512, 3, 1, 1}},
        {"28x28x128to512", {28, 28, 128, 512, 1, 1, 0}},
        {"224x224x3to64k7s2", {224, 224, 3, 64, 7, 2, 3}, true},
    };
    return l;
}

// The engines that run a stem layer: the int8 peers and conv_u8 at W8A8 (not the scalar one, a
// minute a repetition there).
bool runs_stem(const std::string& engine) {
    return engine == "onednn_u8s8" || engine == "xnnpack_qs8" || engine == "u8_w8a8_avx512" || engine == "u8_w8a8_avx2";
}

double macs(const ConvShape& s) {
    const int oh = conv_out_size(s.height, s.kernel, s.stride, s.pad), ow = conv_out_size(s.width, s.kernel, s.stride, s.pad);
    return double(oh) * ow * s.out_channels * s.in_channels * s.kernel * s.kernel;
}

// Times the loop by the wall clock (Halide's and oneDNN's worker threads do not show in the main
// thread's CPU time) and sets the GMAC/s counter from it. Names stay free of "/real_time".
template <typename Body>
void timed_loop(benchmark::State& state, const ConvShape& s, Body body) {
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) body();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.counters["GMAC/s"] = macs(s) * double(state.iterations()) / seconds / 1e9;
}

// Forces a halibit engine's ISA and thread count; skips the benchmark where the CPU lacks it.
bool use_isa(benchmark::State& state, Isa isa, int threads) {
    if (!isa_available(isa)) {
        state.SkipWithError((std::string("no ") + isa_name(isa) + " on this CPU").c_str());
        return false;
    }
    force_isa(isa);
    set_num_threads(threads);
    return true;
}

// Random A-bit codes and W-bit weights (binary at W1, else signed) of a layer, the same for
// every low-bit engine.
struct LowBitOperands {
    WeightEncoding encoding;
    std::vector<uint8_t> codes;  // NHWC, one image
    std::vector<int8_t> weights; // OHWI
    LowBitOperands(const ConvShape& s, int wbits, int abits)
        : encoding(wbits == 1 ? WeightEncoding::binary : WeightEncoding::signed_),
          codes(size_t(s.height) * s.width * s.in_channels),
          weights(size_t(s.out_channels) * s.kernel * s.kernel * s.in_channels) {
        std::mt19937 rng(1);
        for (auto& c : codes) c = uint8_t(rng() & ((1u << abits) - 1));
        const int lo = encoding_min(encoding, wbits), hi = encoding_max(encoding, wbits);
        for (auto& v : weights) {
            do v = int8_t(lo + int(rng() % unsigned(hi - lo + 1)));
            while (!encoding_contains(encoding, wbits, v));
        }
    }
};

// A layer's output stage for the low-bit engines: out_bits codes from a uniform multiplier.
Requantization low_bit_requantization(const ConvShape& s, int out_bits) {
    Requantization rq;
    rq.shift = 16;
    rq.out_bits = out_bits;
    rq.multiplier.assign(s.out_channels, 1 << 10);
    rq.bias.assign(s.out_channels, 0);
    return rq;
}

// Learned-looking codebook levels (not affine in the index bits: three planes at W2).
const std::vector<int> kBenchCodebook[2] = {{-5, 3}, {-7, -1, 2, 9}};

// A halibit bit-serial convolution: W-bit weights x A-bit activations, codes in and codes out;
// `codebook`: the weights are kBenchCodebook's levels at the signed weights' indices, on the
// index's bit planes (pack_codebook_weights).
struct HalibitConv {
    enum Family { bconv, bitserial, codebook };
    Family family;
    int wbits, abits;
    Isa isa;
    Schedule schedule = Schedule::tuned;

    void operator()(benchmark::State& state, const ConvShape& s, int threads) const {
        if (!use_isa(state, isa, threads)) return;
        const LowBitOperands x(s, wbits, abits);
        const std::vector<uint8_t>& codes = x.codes;
        PackedWeights pw;
        if (family == codebook) {
            const std::vector<int>& levels = kBenchCodebook[wbits - 1];
            std::vector<int8_t> values(x.weights.size());
            for (size_t i = 0; i < values.size(); i++)
                values[i] = int8_t(levels[size_t(x.weights[i] - encoding_min(x.encoding, wbits)) % levels.size()]);
            pw = pack_codebook_weights(values.data(), s.out_channels, s.kernel, s.kernel, s.in_channels, 1, levels);
        } else {
            pw = pack_weights(x.weights.data(), s.out_channels, s.kernel, s.kernel, s.in_channels, 1, x.encoding, wbits);
        }
        const Requantization rq = low_bit_requantization(s, family == bconv ? 1 : abits);
        const ActivationShape in_shape{1, s.height, s.width, s.in_channels};
        PackedActivations in;
        std::vector<uint8_t> out(size_t(conv_out_size(s.height, s.kernel, s.stride, s.pad)) *
                                 conv_out_size(s.width, s.kernel, s.stride, s.pad) * s.out_channels);
        const ConvGeometry geo{s.stride, s.pad};
        timed_loop(state, s, [&] {
            pack_activations(codes.data(), in_shape, abits, 1, in, s.pad);
            if (family == bconv)
                halibit::bconv(in, pw, {geo, /*one_padding=*/true}, rq, out.data());
            else
                bitserial_conv(in, pw, geo, rq, out.data(), schedule);
            benchmark::DoNotOptimize(out.data());
        });
        force_isa(Isa::automatic);
    }
};

// conv_u8: uint8 codes in, int8 weights prepared once, 8-bit requantized codes out, like
// oneDNN's u8s8 -> u8 convolution. W8A8 (full-range codes and weights), or narrower (W4A4: codes
// below 16, weights -8..7; vpmaddubsw on AVX2).
struct HalibitConvU8 {
    Isa isa;
    int wbits = 8, abits = 8;

    void operator()(benchmark::State& state, const ConvShape& s, int threads) const {
        if (!use_isa(state, isa, threads)) return;
        std::mt19937 rng(1);
        std::vector<uint8_t> codes(size_t(s.height) * s.width * s.in_channels);
        for (auto& c : codes) c = uint8_t(rng() & ((1u << abits) - 1));
        std::vector<int8_t> w(size_t(s.out_channels) * s.kernel * s.kernel * s.in_channels);
        for (auto& v : w) v = int8_t(int(rng() % (1u << wbits)) - (1 << (wbits - 1)));
        const U8Weights uw = prepare_u8_weights(w.data(), s.out_channels, s.kernel, s.kernel, s.in_channels, 1);
        Requantization rq;
        rq.shift = 16;
        rq.out_bits = 8;
        rq.multiplier.assign(s.out_channels, 1 << 4);
        rq.bias.assign(s.out_channels, 0);
        const ActivationShape in_shape{1, s.height, s.width, s.in_channels};
        std::vector<uint8_t> out(size_t(conv_out_size(s.height, s.kernel, s.stride, s.pad)) *
                                 conv_out_size(s.width, s.kernel, s.stride, s.pad) * s.out_channels);
        const ConvGeometry geo{s.stride, s.pad};
        timed_loop(state, s, [&] {
            conv_u8(codes.data(), in_shape, uw, geo, nullptr, rq, out.data(), abits);
            benchmark::DoNotOptimize(out.data());
        });
        force_isa(Isa::automatic);
    }
};

// lut_conv: codes in (the algorithm reads plain NHWC codes, nothing to pack), signed weights
// prepared once (binary at W1), requantized A-bit codes out.
struct HalibitLut {
    LutAlgorithm algorithm;
    int wbits, abits;
    Isa isa;

    void operator()(benchmark::State& state, const ConvShape& s, int threads) const {
        if (!use_isa(state, isa, threads)) return;
        const LowBitOperands x(s, wbits, abits);
        const std::vector<uint8_t>& codes = x.codes;
        const LutWeights lw = prepare_lut_weights(algorithm, x.weights.data(), s.out_channels, s.kernel, s.kernel,
                                                  s.in_channels, 1, x.encoding, wbits);
        const Requantization rq = low_bit_requantization(s, abits);
        const ActivationShape in_shape{1, s.height, s.width, s.in_channels};
        std::vector<uint8_t> out(size_t(conv_out_size(s.height, s.kernel, s.stride, s.pad)) *
                                 conv_out_size(s.width, s.kernel, s.stride, s.pad) * s.out_channels);
        const ConvGeometry geo{s.stride, s.pad};
        timed_loop(state, s, [&] {
            lut_conv(codes.data(), in_shape, abits, lw, geo, rq, out.data());
            benchmark::DoNotOptimize(out.data());
        });
        force_isa(Isa::automatic);
    }
};

void onednn(benchmark::State& state, const ConvShape& s, int threads) {
    OneDnnConvU8S8 conv(s, threads);
    timed_loop(state, s, [&] { conv.run(); });
    state.SetLabel(conv.isa());
}

void xnnpack(benchmark::State& state, const ConvShape& s, int threads) {
    XnnpackConvQS8 conv(s, threads);
    timed_loop(state, s, [&] { conv.run(); });
}

// The engine `name` of the kernel list's bench field at (w, a) on isa (Isa::automatic: the
// list's li2018 library).
std::function<void(benchmark::State&, const ConvShape&, int)> make_engine(const std::string& name, int w, int a, Isa isa) {
    const Schedule schedule = isa == Isa::automatic ? Schedule::autoscheduled : Schedule::tuned;
    if (name == "bconv") return HalibitConv{HalibitConv::bconv, w, a, isa, schedule};
    if (name == "bitserial") return HalibitConv{HalibitConv::bitserial, w, a, isa, schedule};
    if (name == "codebook") return HalibitConv{HalibitConv::codebook, w, a, isa, schedule};
    if (name == "u8") return HalibitConvU8{isa, w, a};
    if (name == "lut") return HalibitLut{LutAlgorithm::activation_table, w, a, isa};
    if (name == "lut_pairwise") return HalibitLut{LutAlgorithm::pairwise, w, a, isa};
    throw std::runtime_error("generators/kernels.inc: no halibit-bench-kernels engine named " + name);
}

void register_all() {
    struct Engine {
        std::string name;
        std::function<void(benchmark::State&, const ConvShape&, int)> fn;
    };
    std::vector<Engine> engines = {{"onednn_u8s8", onednn}, {"xnnpack_qs8", xnnpack}};
    // The kernel list's bench fields ("<engine> <wNaM>...", groups split by ';'), each engine once:
    // <engine>_wNaM_<isa> per x86 ISA, or <engine>_wNaM_auto for the autoscheduler baseline.
    struct Listed {
        const char* targets;
        const char* bench;
    };
    static const Listed listed[] = {
#define HALIBIT_KERNEL(lib, generator, targets, params, tests, bench) {#targets, bench},
#include "kernels.inc"
#undef HALIBIT_KERNEL
    };
    std::set<std::string> seen;
    for (const Listed& l : listed) {
        std::istringstream groups(l.bench);
        std::string group;
        while (std::getline(groups, group, ';')) {
            std::istringstream words(group);
            std::string name, pair;
            words >> name;
            while (words >> pair) {
                int w = 0, a = 0;
                if (std::sscanf(pair.c_str(), "w%da%d", &w, &a) != 2)
                    throw std::runtime_error("generators/kernels.inc: bench field '" + std::string(l.bench) +
                                             "': expected wNaM, got " + pair);
                const std::string base = name + "_" + pair;
                const bool baseline = std::string(l.targets) == "li2018";
                for (Isa isa : baseline ? std::vector<Isa>{Isa::automatic}
                                        : std::vector<Isa>{Isa::avx512, Isa::avx2, Isa::scalar}) {
                    const std::string engine = base + "_" + (baseline ? "auto" : isa_name(isa));
                    if (seen.insert(engine).second) engines.push_back({engine, make_engine(name, w, a, isa)});
                }
            }
        }
    }
    // bench/sweep.py's schedule variants: an engine with its kernel library replaced, timed
    // interleaved with the rest.
    for (const KernelVariant& v : kernel_variants_from_env()) {
        auto base = std::find_if(engines.begin(), engines.end(), [&](const Engine& e) { return e.name == v.engine; });
        if (base == engines.end()) throw std::runtime_error("kernel variant " + v.label + ": no engine " + v.engine);
        engines.push_back({v.engine + "@" + v.label, [fn = base->fn, v](benchmark::State& st, const ConvShape& s, int t) {
                               override_kernel(v.kernel, v.entry);
                               fn(st, s, t);
                               override_kernel(v.kernel, nullptr);
                           }});
    }
    for (int threads : {1, 2})
        for (const Layer& l : layers())
            for (const Engine& e : engines) {
                if (l.stem && !runs_stem(e.name)) continue;
                const std::string name = "conv/" + e.name + "/" + l.name + "/threads:" + std::to_string(threads);
                auto fn = e.fn;
                ConvShape s = l.shape;
                benchmark::RegisterBenchmark(name.c_str(), [fn, s, threads](benchmark::State& st) { fn(st, s, threads); })
                    ->Unit(benchmark::kMicrosecond)
                    ->ComputeStatistics("min", [](const std::vector<double>& v) {
                        return *std::min_element(v.begin(), v.end());
                    });
            }
}

// Collects real times and prints the ratio table after the normal console output.
class SummaryReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        // With --benchmark_repetitions the fastest repetition (the "min" aggregate, reported after
        // the repetitions) wins: on a shared machine interference only ever adds time.
        for (const Run& r : runs) {
            if (r.error_occurred) continue;
            if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "min") continue;
            times_[r.run_name.str()] = r.GetAdjustedRealTime();
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        std::map<std::string, std::map<std::string, std::map<std::string, double>>> t;  // threads, engine, layer
        for (auto& [name, time] : times_) {
            // conv/<engine>/<layer>/threads:<n>
            auto p1 = name.find('/', 5), p2 = name.find('/', p1 + 1);
            t[name.substr(p2 + 1)][name.substr(5, p1 - 5)][name.substr(p1 + 1, p2 - p1 - 1)] = time;
        }
        for (auto& [threads, engines] : t) {
            // GMAC/s from the same times as the ratios (the counter column of "_min" rows is the
            // lowest rate of the repetitions, not the rate of the fastest one).
            std::printf("\nGMAC/s, %s\n%-22s", threads.c_str(), "engine");
            for (const Layer& l : layers()) std::printf(" %15s", l.name);
            std::printf("\n");
            for (auto& [engine, by_layer] : engines) {
                std::printf("%-22s", engine.c_str());
                for (const Layer& l : layers()) {
                    auto it = by_layer.find(l.name);
                    // Times are in the benchmarks' unit, microseconds.
                    if (it == by_layer.end()) std::printf(" %15s", "-");
                    else std::printf(" %15.1f", macs(l.shape) / (it->second * 1e-6) / 1e9);
                }
                std::printf("\n");
            }
            auto base = engines.find("onednn_u8s8");
            if (base == engines.end()) continue;
            std::printf("\nSpeed-up over onednn_u8s8 (time ratio), %s\n%-22s", threads.c_str(), "engine");
            for (const Layer& l : layers()) std::printf(" %15s", l.name);
            std::printf(" %12s\n", "geomean 3x3");
            for (auto& [engine, by_layer] : engines) {
                std::printf("%-22s", engine.c_str());
                double log_sum = 0;
                int n3 = 0;
                for (const Layer& l : layers()) {
                    auto it = by_layer.find(l.name);
                    auto b = base->second.find(l.name);
                    if (it == by_layer.end() || b == base->second.end()) {
                        std::printf(" %15s", "-");
                        continue;
                    }
                    const double ratio = b->second / it->second;
                    std::printf(" %15.2f", ratio);
                    if (l.shape.kernel == 3) log_sum += std::log(ratio), n3++;
                }
                if (n3 == 4)
                    std::printf(" %12.2f\n", std::exp(log_sum / n3));
                else
                    std::printf(" %12s\n", "-");
            }
        }
    }

private:
    std::map<std::string, double> times_;
};

}  // namespace
}  // namespace halibit::bench

int main(int argc, char** argv) {
    halibit::apply_kernel_override_from_env();  // bench/sweep.py
    benchmark::Initialize(&argc, argv);
    halibit::bench::register_all();
    halibit::bench::SummaryReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}
