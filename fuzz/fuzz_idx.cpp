// Fuzzes the IDX reader of `halibit eval` (plain and gzip). Every input must end in an array
// or a halibit::Error naming the file; a declared size is never allocated before the data is
// there (a gzip bomb or a huge shape is refused).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "halibit/error.h"
#include "halibit/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const halibit::IdxArray a = halibit::parse_idx(data, size, "fuzz.idx");
        int64_t n = 1;
        for (int64_t d : a.shape) n *= d;
        if (a.shape.empty() || a.shape.size() > 4 || n > halibit::kMaxIdxBytes || a.data.size() != size_t(n)) {
            std::fprintf(stderr, "fuzz_idx: %zu dimensions, %zu bytes for %lld elements\n", a.shape.size(), a.data.size(),
                         static_cast<long long>(n));
            std::abort();
        }
    } catch (const halibit::Error& e) {
        if (std::string(e.what()).rfind("fuzz.idx: ", 0) != 0) {
            std::fprintf(stderr, "fuzz_idx: message does not start with the file name: %s\n", e.what());
            std::abort();
        }
    }
    return 0;
}
