// Reads a whole file into memory; errors name the file and the reason.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace halibit {

// Throws halibit::Error when the file cannot be read or is larger than max_bytes.
std::vector<uint8_t> read_file(const std::string& path, int64_t max_bytes);

}  // namespace halibit
