// Fuzzes the IDX reader of `halibit eval` (plain and gzip). Every input must end in an array
// or a halibit::Error naming the file; a declared size is never allocated before the data is
// there (a gzip bomb or a huge shape is refused).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "halibit/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const halibit::IdxArray a = halibit::parse_idx(data, size, "fuzz.idx");
        int64_t n = 1;
        for (int64_t d : a.shape) n *= d;
        if (a.shape.empty() || a.shape.size() > 4 || n > halibit::kMaxIdxBytes || a.data.size() != size_t(n))
            halibit::fuzz::fail("idx", "array", std::to_string(a.shape.size()) + " dimensions, " + std::to_string(a.data.size()) +
                                                    " bytes for " + std::to_string(n) + " elements");
    } catch (const halibit::Error& e) {
        halibit::fuzz::expect_names_file(e, "fuzz.idx", "idx");
    }
    return 0;
}
