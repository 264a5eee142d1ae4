// Session: turns a validated Model into a list of steps over one activation arena.
//
// prepare() decides, per convolution, which kernel runs (kernel_choice.h), which form each
// tensor needs (plain codes / int32 for the 8-bit kernel and the glue ops, bit planes for the
// bit-serial kernels), packs the weights, and places every buffer in one arena by liveness.
// run() only executes steps.
#include "halibit/session.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <set>

#include "halibit/error.h"
#include "halibit/kernels.h"
#include "dispatch.h"
#include "glue.h"
#include "kernel_choice.h"

namespace halibit {

const char* kernel_choice_name(KernelChoice k) {
    switch (k) {
    case KernelChoice::automatic: return "auto";
    case KernelChoice::bitserial: return "bitserial";
    case KernelChoice::u8: return "u8";
    case KernelChoice::lut: return "lut";
    }
    return "?";
}

KernelChoice parse_kernel_choice(const std::string& name) {
    for (KernelChoice k : {KernelChoice::automatic, KernelChoice::bitserial, KernelChoice::u8, KernelChoice::lut})
        if (name == kernel_choice_name(k)) return k;
    throw Error("unknown kernel choice '" + name + "' (expected auto, bitserial, u8 or lut)");
}

namespace {

constexpr size_t kAlign = 64;
size_t align_up(size_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// One buffer of the arena: a tensor in one form, alive from step `first` to step `last`.
struct Slot {
    size_t bytes = 0, offset = 0;
    int first = 0, last = 0;
};

// First-fit by decreasing size among slots whose lifetimes overlap; returns the arena size.
size_t place_slots(std::vector<Slot>& slots) {
    std::vector<size_t> order(slots.size());
    for (size_t i = 0; i < order.size(); i++) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slots[a].bytes > slots[b].bytes; });
    std::vector<size_t> placed;
    size_t total = 0;
    for (size_t i : order) {
        Slot& s = slots[i];
        std::vector<std::pair<size_t, size_t>> busy;
        for (size_t j : placed)
            if (slots[j].first <= s.last && s.first <= slots[j].last) busy.push_back({slots[j].offset, slots[j].offset + slots[j].bytes});
        std::sort(busy.begin(), busy.end());
        size_t at = 0;
        for (auto [b, e] : busy) {
            if (at + s.bytes <= b) break;
            at = std::max(at, align_up(e));
        }
        s.offset = at;
        total = std::max(total, at + s.bytes);
        placed.push_back(i);
    }
    return total;
}

// A convolution's int32 bias (format version 3): out[p, c] += bias[c] over `pixels` NHWC pixels,
// after the kernel wrote the accumulators. The loader checked that every sum fits int32.
void add_int32_bias(int32_t* out, size_t pixels, const std::vector<int32_t>& bias) {
    const size_t channels = bias.size();
    for (size_t p = 0; p < pixels; p++, out += channels)
        for (size_t c = 0; c < channels; c++) out[c] += bias[c];
}

}  // namespace

struct Session::Impl {
    std::shared_ptr<const Model> model;
    SessionOptions options;
    int batch = 0;

    // Per graph tensor: where its forms live.
    struct TensorState {
        const TensorSpec* spec = nullptr;
        int plain_slot = -1;   // codes (uint8) or int32, NHWC
        bool needs_planes = false;  // a bit-serial convolution reads it: it also gets bit planes
        int packed_slot = -1;  // those bit planes
        int packed_groups = 1, packed_border = 0;
        PackedActivations packed;
    };
    enum class Kind { conv_bitserial, conv_u8, conv_lut, add, max_pool, global_avg_pool, channel_shuffle };
    struct Step {
        const Layer* layer = nullptr;
        Kind kind = Kind::conv_u8;
        std::string kernel;
        PackedWeights packed_weights;
        U8Weights u8_weights;
        LutAlgorithm lut_algorithm = LutAlgorithm::activation_table;
        LutWeights lut_weights;
        std::vector<uint8_t> pad_values;
        Requantization rq;
        std::vector<int32_t> int32_bias;  // conv with an int32 output: added per channel (empty: none)
        AddParams add;
        int64_t macs = 0;
        uint64_t called_kernels = 0;  // in the last run
    };

    std::map<std::string, TensorState> tensors;
    std::vector<Step> steps;
    std::vector<Slot> slots;
    std::vector<uint64_t> arena;  // 8-byte aligned storage; offsets are 64-byte aligned
    uint8_t* arena_base = nullptr;
    size_t arena_size = 0, weights_size = 0;
    std::vector<LayerProfile> profile;
    // The kernel libraries a step ran (bit int(Kernel)), as "a+b" without the halibit_ prefix.
    static std::string implementation_name(uint64_t called) {
        std::string name;
        for (std::string lib : kernel_names(called)) {
            if (lib.rfind("halibit_", 0) == 0) lib = lib.substr(8);
            name += (name.empty() ? "" : "+") + lib;
        }
        return name;
    }
    std::vector<std::string> kernel_notes;

    uint8_t* slot_ptr(int slot) { return arena_base + slots[slot].offset; }
    ActivationShape shape_of(const TensorSpec& t) const { return {batch, t.h, t.w, t.c}; }

    void plan(int new_batch);
    void execute(const uint8_t* images);
};

void Session::Impl::plan(int new_batch) {
    const Model& m = *model;
    batch = new_batch;
    tensors.clear();
    steps.clear();
    slots.clear();
    kernel_notes.clear();
    for (const auto& [name, spec] : m.tensors()) tensors[name].spec = &spec;

    // 1. Kernels per layer, and which forms each tensor needs.
    std::map<std::string, std::vector<int>> consumers;  // tensor -> step indices
    const Isa isa = resolved_isa(options.isa);
    for (const Layer& l : m.layers()) {
        Step s;
        s.layer = &l;
        s.macs = m.macs(l) * batch;
        switch (l.op) {
        case Op::conv: {
            const TensorSpec& in = m.tensor(l.inputs[0]);
            const bool zero_pad = std::all_of(l.pad_values.begin(), l.pad_values.end(), [](int v) { return v == 0; });
            const TensorSpec& out = m.tensor(l.output);
            ConvChoiceInput choice{l.encoding, l.weight_bits, in.bits, zero_pad, isa, m.macs(l), out.c / l.groups,
                                   int64_t(in.c / l.groups) * l.kernel_h * l.kernel_w};
            choice.taps = l.kernel_h * l.kernel_w;
            if (l.encoding == WeightEncoding::codebook) {
                choice.min_weight = *std::min_element(l.levels.begin(), l.levels.end());
                choice.max_weight = *std::max_element(l.levels.begin(), l.levels.end());
            }
            const ConvChoice chosen = choose_conv(options.kernels, choice);
            const ConvAlgorithm a = chosen.algorithm;
            if (!chosen.refused.empty()) kernel_notes.push_back("layer '" + l.name + "' runs conv_u8: " + chosen.refused);
            s.kind = a == ConvAlgorithm::bitserial ? Kind::conv_bitserial
                     : a == ConvAlgorithm::u8     ? Kind::conv_u8
                                                  : Kind::conv_lut;
            s.lut_algorithm = a == ConvAlgorithm::pairwise ? LutAlgorithm::pairwise : LutAlgorithm::activation_table;
            break;
        }
        case Op::add: s.kind = Kind::add; break;
        case Op::max_pool: s.kind = Kind::max_pool; break;
        case Op::global_avg_pool: s.kind = Kind::global_avg_pool; break;
        case Op::channel_shuffle: s.kind = Kind::channel_shuffle; break;
        }
        for (const std::string& i : l.inputs) consumers[i].push_back(int(steps.size()));
        steps.push_back(std::move(s));
    }

    // A bit-serial conv reads bit planes in its group layout; one packed form per tensor, so a
    // second consumer with another group count falls back to the 8-bit kernel.
    for (Step& s : steps) {
        if (s.kind != Kind::conv_bitserial) continue;
        TensorState& t = tensors[s.layer->inputs[0]];
        if (t.needs_planes && t.packed_groups != s.layer->groups) {
            s.kind = Kind::conv_u8;
            kernel_notes.push_back("layer '" + s.layer->name + "' runs conv_u8: its input's bit planes are packed for " +
                                   std::to_string(t.packed_groups) + " groups, it has " + std::to_string(s.layer->groups));
            continue;
        }
        t.needs_planes = true;
        t.packed_groups = s.layer->groups;
        t.packed_border = std::max(t.packed_border, s.layer->pad);
    }

    // 2. Slots with lifetimes. Step i runs at time i + 1; the input image is written at time 0.
    auto last_use = [&](const std::string& name) {
        int last = 0;
        for (int c : consumers[name]) last = std::max(last, c + 1);
        return name == m.output().name ? int(steps.size()) + 1 : last;
    };
    auto add_slot = [&](size_t bytes, int first, int last) {
        slots.push_back({align_up(bytes), 0, first, std::max(first, last)});
        return int(slots.size()) - 1;
    };
    // Every tensor has its plain form; one read by bit-serial convolutions also gets bit planes,
    // packed right after its producer. (The convolutions' fused packed output would save that
    // pass, but its bit gathering is scalar, slower than codes plus the vectorized pack kernel.)
    auto declare = [&](const std::string& name, int time) {
        TensorState& t = tensors[name];
        const TensorSpec& spec = *t.spec;
        const size_t elem = spec.type == TensorType::int32 ? 4 : 1;
        // Plain codes read only through their bit planes are dead once packed.
        int plain_last = name == m.output().name ? last_use(name) : time;
        for (int c : consumers[name])
            if (steps[c].kind != Kind::conv_bitserial) plain_last = std::max(plain_last, c + 1);
        t.plain_slot = add_slot(size_t(batch) * spec.elements() * elem, time, plain_last);
        if (t.needs_planes) {
            PackedActivations probe;
            probe.shape = shape_of(spec);
            probe.planes = spec.bits;
            probe.groups = t.packed_groups;
            probe.border = t.packed_border;
            t.packed_slot = add_slot(probe.total_words() * 8, time, last_use(name));
        }
    };
    declare(m.input().name, 0);
    for (size_t i = 0; i < steps.size(); i++) declare(steps[i].layer->output, int(i) + 1);
    arena_size = place_slots(slots);
    arena.assign(arena_size / 8 + kAlign / 8 + 1, 0);
    arena_base = reinterpret_cast<uint8_t*>(align_up(reinterpret_cast<uintptr_t>(arena.data())));

    // 3. Weights and parameters, once.
    weights_size = 0;
    for (Step& s : steps) {
        const Layer& l = *s.layer;
        const TensorSpec& in = m.tensor(l.inputs[0]);
        const TensorSpec& out = m.tensor(l.output);
        switch (s.kind) {
        case Kind::conv_bitserial:
        case Kind::conv_lut:
        case Kind::conv_u8: {
            const int8_t* ohwi = m.weight_values(l);
            if (l.requantize) {
                for (int64_t v : m.stored(l.multiplier).values()) s.rq.multiplier.push_back(int32_t(v));
                s.rq.bias = m.stored(l.bias).values();
                s.rq.shift = l.shift;
                s.rq.out_bits = out.bits;
            }
            if (!l.int32_bias.empty())
                for (int64_t v : m.stored(l.int32_bias).values()) s.int32_bias.push_back(int32_t(v));
            const int cg = in.c / l.groups;
            if (s.kind == Kind::conv_bitserial) {
                s.packed_weights =
                    l.encoding == WeightEncoding::codebook
                        ? pack_codebook_weights(ohwi, out.c, l.kernel_h, l.kernel_w, cg, l.groups, l.levels)
                        : pack_weights(ohwi, out.c, l.kernel_h, l.kernel_w, cg, l.groups, l.encoding, l.weight_bits);
                weights_size += s.packed_weights.words_data.size() * 8;
                s.kernel = std::string("bitserial w") + std::to_string(l.weight_bits) + "a" + std::to_string(in.bits) + " " +
                           encoding_name(l.encoding);
            } else if (s.kind == Kind::conv_lut) {
                if (s.lut_algorithm == LutAlgorithm::pairwise) {
                    // The pairwise kernel takes level indices: a value's first level.
                    const size_t count = size_t(out.c) * l.kernel_h * l.kernel_w * cg;
                    std::vector<uint8_t> indices(count);
                    for (size_t i = 0; i < count; i++)
                        indices[i] = uint8_t(std::find(l.levels.begin(), l.levels.end(), ohwi[i]) - l.levels.begin());
                    s.lut_weights = prepare_lut_codebook_weights(indices.data(), out.c, l.kernel_h, l.kernel_w, cg, l.groups,
                                                                 std::vector<int32_t>(l.levels.begin(), l.levels.end()));
                } else {
                    s.lut_weights = prepare_lut_weights(LutAlgorithm::activation_table, ohwi, out.c, l.kernel_h, l.kernel_w,
                                                        cg, l.groups, l.encoding, l.weight_bits);
                }
                weights_size += s.lut_weights.data.size();
                s.kernel = std::string("lut ") + lut_algorithm_name(s.lut_algorithm) + " w" +
                           std::to_string(l.weight_bits) + "a" + std::to_string(in.bits) + " " + encoding_name(l.encoding);
            } else {
                s.u8_weights = prepare_u8_weights(ohwi, out.c, l.kernel_h, l.kernel_w, cg, l.groups);
                weights_size += s.u8_weights.data.size() + s.u8_weights.sums.size() * 4;
                s.pad_values.assign(l.pad_values.begin(), l.pad_values.end());
                s.kernel = "u8 w" + std::to_string(l.weight_bits) + "a" + std::to_string(in.bits);
            }
            break;
        }
        case Kind::add: {
            for (int i = 0; i < 2; i++)
                for (int64_t v : m.stored(l.add_multipliers[i]).values()) s.add.multiplier[i].push_back(int32_t(v));
            s.add.bias = m.stored(l.bias).values();
            s.add.shift = l.shift;
            s.add.out_bits = out.bits;
            s.kernel = "add";
            break;
        }
        case Kind::max_pool: s.kernel = "max_pool"; break;
        case Kind::global_avg_pool: s.kernel = "global_avg_pool"; break;
        case Kind::channel_shuffle: s.kernel = "channel_shuffle"; break;
        }
    }

    // 4. Bit-plane buffers over their arena slots.
    for (auto& [name, t] : tensors)
        if (t.needs_planes)
            t.packed.place(shape_of(*t.spec), t.spec->bits, t.packed_groups, t.packed_border,
                           reinterpret_cast<uint64_t*>(slot_ptr(t.packed_slot)));

    profile.assign(steps.size(), {});
    for (size_t i = 0; i < steps.size(); i++)
        profile[i] = {steps[i].layer->name, op_name(steps[i].layer->op), steps[i].kernel, "", 0.0, steps[i].macs};
}

void Session::Impl::execute(const uint8_t* images) {
    const Model& m = *model;
    auto plain_codes = [&](const std::string& name) { return slot_ptr(tensors[name].plain_slot); };
    auto plain_i32 = [&](const std::string& name) { return reinterpret_cast<int32_t*>(slot_ptr(tensors[name].plain_slot)); };
    // After a tensor's plain codes are written: pack them if a bit-serial conv reads them. The
    // packed slot may have been another buffer before, so its zero border is restored first.
    auto finish = [&](const std::string& name) {
        TensorState& t = tensors[name];
        if (!t.needs_planes) return;
        PackedActivations& p = t.packed;
        std::fill(p.data(), p.data() + p.total_words(), uint64_t(0));
        pack_activations(slot_ptr(t.plain_slot), p.shape, p.planes, p.groups, p, p.border);
    };

    const TensorSpec& input = m.input();
    std::memcpy(plain_codes(input.name), images, size_t(batch) * input.elements());
    finish(input.name);
    take_called_kernels();  // the input's packing is nobody's layer

    for (size_t i = 0; i < steps.size(); i++) {
        Step& s = steps[i];
        const Layer& l = *s.layer;
        const TensorSpec& in = m.tensor(l.inputs[0]);
        const TensorSpec& out = m.tensor(l.output);
        const auto start = std::chrono::steady_clock::now();
        const ConvGeometry geometry{l.stride, l.pad};
        switch (s.kind) {
        case Kind::conv_bitserial: {
            const PackedActivations& x = tensors[l.inputs[0]].packed;
            if (out.type == TensorType::int32)
                bitserial_conv(x, s.packed_weights, geometry, plain_i32(l.output));
            else
                bitserial_conv(x, s.packed_weights, geometry, s.rq, plain_codes(l.output));
            break;
        }
        case Kind::conv_lut: {
            if (out.type == TensorType::int32)
                lut_conv(plain_codes(in.name), shape_of(in), in.bits, s.lut_weights, geometry, plain_i32(l.output));
            else
                lut_conv(plain_codes(in.name), shape_of(in), in.bits, s.lut_weights, geometry, s.rq, plain_codes(l.output));
            break;
        }
        case Kind::conv_u8: {
            const uint8_t* pad = s.pad_values.empty() ? nullptr : s.pad_values.data();
            if (out.type == TensorType::int32)
                conv_u8(plain_codes(in.name), shape_of(in), s.u8_weights, geometry, pad, plain_i32(l.output), in.bits);
            else
                conv_u8(plain_codes(in.name), shape_of(in), s.u8_weights, geometry, pad, s.rq, plain_codes(l.output),
                        in.bits);
            break;
        }
        case Kind::add: {
            const TensorSpec& in1 = m.tensor(l.inputs[1]);
            AddInput a{in.type == TensorType::int32, plain_codes(in.name)};
            AddInput b{in1.type == TensorType::int32, plain_codes(in1.name)};
            add(a, b, size_t(batch) * in.h * in.w, in.c, s.add, plain_codes(l.output));
            break;
        }
        case Kind::max_pool:
            max_pool(plain_codes(in.name), shape_of(in), l.kernel_h, l.kernel_w, l.stride, l.pad, plain_codes(l.output));
            break;
        case Kind::global_avg_pool:
            global_avg_pool(plain_codes(in.name), shape_of(in), l.pool_multiplier, l.shift, out.bits, plain_codes(l.output));
            break;
        case Kind::channel_shuffle:
            channel_shuffle(plain_codes(in.name), size_t(batch) * in.h * in.w, in.c, l.shuffle_groups, plain_codes(l.output));
            break;
        }
        if (!s.int32_bias.empty()) add_int32_bias(plain_i32(l.output), size_t(batch) * out.h * out.w, s.int32_bias);
        finish(l.output);
        profile[i].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (const uint64_t called = take_called_kernels(); called != s.called_kernels) {
            s.called_kernels = called;
            profile[i].implementation = implementation_name(called);
        }
    }
}

Session::Session(std::shared_ptr<const Model> model, SessionOptions options) : impl_(new Impl) {
    if (!model) throw Error("Session: no model");
    if (options.threads < 1) throw Error("Session: threads must be at least 1 (got " + std::to_string(options.threads) + ")");
    if (options.isa != Isa::automatic && !isa_available(options.isa))
        throw Error(std::string("isa ") + isa_name(options.isa) + " is not available on this CPU or build");
    impl_->model = std::move(model);
    impl_->options = options;
}

Session::~Session() = default;

void Session::prepare(int batch) {
    if (batch < 1) throw Error("Session: batch must be at least 1 (got " + std::to_string(batch) + ")");
    if (batch != impl_->batch) impl_->plan(batch);
}

std::vector<int32_t> Session::run(const uint8_t* images, int batch) {
    prepare(batch);
    IsaScope isa(impl_->options.isa);
    set_num_threads(impl_->options.threads);
    impl_->execute(images);
    const TensorSpec& out = impl_->model->output();
    const auto* logits = reinterpret_cast<const int32_t*>(impl_->slot_ptr(impl_->tensors[out.name].plain_slot));
    return std::vector<int32_t>(logits, logits + size_t(batch) * out.c);
}

const std::vector<LayerProfile>& Session::profile() const { return impl_->profile; }
const std::vector<std::string>& Session::kernel_notes() const { return impl_->kernel_notes; }
size_t Session::arena_bytes() const { return impl_->arena_size; }
size_t Session::weight_bytes() const { return impl_->weights_size; }
const Model& Session::model() const { return *impl_->model; }
const SessionOptions& Session::options() const { return impl_->options; }

}  // namespace halibit
