// Which instruction set the kernels run with. Kernels are multi-target: by default Halide picks
// the most specific target the CPU supports; tests and benchmarks force one.
#pragma once
#include <string>

namespace halibit {

// arm64_dotprod: ARMv8.2 dot product (sdot). Kernels without such a variant run their arm64 one.
enum class Isa { automatic, avx512, avx2, scalar, arm64, arm64_dotprod };

const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // "auto", "avx512", "avx2", "scalar", "arm64", "arm64_dotprod"; throws halibit::Error

// True if the kernels were built for `isa` and this CPU can run them.
bool isa_available(Isa isa);

// Process-wide: every kernel call after this runs the `isa` variant (Isa::automatic: the best
// one). Throws halibit::Error if the ISA is not available.
void force_isa(Isa isa);
Isa forced_isa();

// The ISA kernel calls run with: `requested` unless automatic, else the forced one (force_isa,
// IsaScope), else the best one this CPU and build support.
Isa resolved_isa(Isa requested);

// Forces `isa` for kernel calls made by this thread while the scope lives (Session::run uses
// it, so sessions with different ISAs can run side by side). Throws like force_isa.
class IsaScope {
public:
    explicit IsaScope(Isa isa);
    ~IsaScope();
    IsaScope(const IsaScope&) = delete;
    IsaScope& operator=(const IsaScope&) = delete;

private:
    Isa previous_;
};

// Threads of the parallel kernel loops the calling thread runs next: 1 runs them in the calling
// thread itself; more use halibit's process-wide thread pool (its workers spin briefly between
// loops) with that many threads.
void set_num_threads(int threads);

}  // namespace halibit
