// Fuzzes the .npy reader (`halibit run --input`, the golden tests). Every input must end in an
// array or a halibit::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "halibit/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const halibit::NpyArray a = halibit::parse_npy(std::vector<uint8_t>(data, data + size), "fuzz.npy");
        const size_t item = a.dtype == "u1" || a.dtype == "i1" ? 1 : a.dtype == "i4" || a.dtype == "f4" ? 4 : 8;
        if (a.elements() < 0 || a.data.size() != size_t(a.elements()) * item || a.data.size() > size)
            halibit::fuzz::fail("npy", "array", "dtype " + a.dtype + ", " + std::to_string(a.elements()) + " elements, " +
                                                    std::to_string(a.data.size()) + " bytes");
    } catch (const halibit::Error& e) {
        halibit::fuzz::expect_names_file(e, "fuzz.npy", "npy");
    }
    return 0;
}
