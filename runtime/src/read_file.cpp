#include "read_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "halibit/error.h"

namespace halibit {

std::vector<uint8_t> read_file(const std::string& path, int64_t max_bytes) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
    f.seekg(0, std::ios::end);
    const std::streamoff size = f.tellg();
    if (size < 0) throw Error(path + ": cannot read: " + std::strerror(errno));
    if (size > max_bytes)
        throw Error(path + ": is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                    " this reader accepts");
    f.seekg(0, std::ios::beg);
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size))
        throw Error(path + ": cannot read: " + std::strerror(errno));
    return bytes;
}

}  // namespace halibit
