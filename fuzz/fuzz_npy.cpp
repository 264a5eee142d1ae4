// Fuzzes the .npy reader (`halibit run --input`, the golden tests). Every input must end in an
// array or a halibit::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "halibit/error.h"
#include "halibit/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const halibit::NpyArray a = halibit::parse_npy(std::vector<uint8_t>(data, data + size), "fuzz.npy");
        const size_t item = a.dtype == "u1" || a.dtype == "i1" ? 1 : a.dtype == "i4" || a.dtype == "f4" ? 4 : 8;
        if (a.elements() < 0 || a.data.size() != size_t(a.elements()) * item || a.data.size() > size) {
            std::fprintf(stderr, "fuzz_npy: dtype %s, %lld elements, %zu bytes\n", a.dtype.c_str(),
                         static_cast<long long>(a.elements()), a.data.size());
            std::abort();
        }
    } catch (const halibit::Error& e) {
        if (std::string(e.what()).rfind("fuzz.npy: ", 0) != 0) {
            std::fprintf(stderr, "fuzz_npy: message does not start with the file name: %s\n", e.what());
            std::abort();
        }
    }
    return 0;
}
