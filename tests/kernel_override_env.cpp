// Lets bench/sweep.py run the kernel suites on a schedule variant (bench/kernel_override.h).
#include "../bench/kernel_override.h"

namespace {
const std::string overridden = halibit::apply_kernel_override_from_env();
}
