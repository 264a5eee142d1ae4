// Linked into the kernel suites: lets bench/sweep.py run them on a schedule variant
// (bench/kernel_override.h), and with HALIBIT_KERNEL_CALLS=<file> writes the kernel libraries the
// run called, one per line, for tests/check_kernel_list.py.
#include <gtest/gtest.h>

#include <fstream>

#include "../bench/kernel_override.h"

namespace {

const std::string overridden = halibit::apply_kernel_override_from_env();

class KernelCalls : public ::testing::Environment {
public:
    void TearDown() override {
        const char* path = std::getenv("HALIBIT_KERNEL_CALLS");
        if (!path || !*path) return;
        std::ofstream out(path);
        for (const std::string& name : halibit::kernel_names(halibit::take_called_kernels())) out << name << "\n";
        if (!out) ADD_FAILURE() << "HALIBIT_KERNEL_CALLS: cannot write " << path;
    }
};
::testing::Environment* const calls = ::testing::AddGlobalTestEnvironment(new KernelCalls);

}  // namespace
