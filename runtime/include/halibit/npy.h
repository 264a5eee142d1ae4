// NumPy .npy files (format 1.0-3.0, little-endian, C order): the arrays `halibit run` reads and
// writes and the golden tests compare.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace halibit {

struct NpyArray {
    std::string dtype;  // numpy descr without byte order: "u1", "i1", "i4", "i8", "f4", "f8"
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;  // raw little-endian bytes, C order
    int64_t elements() const;
};

// Throws halibit::Error naming the file and what is wrong (bad magic, header, dtype, Fortran
// order, big-endian, data shorter than the shape, shape product overflow).
NpyArray read_npy(const std::string& path);
NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& name);
void write_npy(const std::string& path, const std::string& dtype, const std::vector<int64_t>& shape, const void* data);

}  // namespace halibit
