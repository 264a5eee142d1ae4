// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
// IDX: bytes 0, 0, type, ndim; ndim big-endian uint32 sizes; the data. Only unsigned bytes
// (type 0x08) are read. The declared size is checked against kMaxIdxBytes and against the data
// before anything of that size is allocated, so a gzip bomb or a huge shape is refused.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace halibit {

constexpr int64_t kMaxIdxBytes = int64_t(1) << 29;  // 512 MiB of data (Fashion-MNIST train: 47 MB)

struct IdxArray {
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
};

// Decodes an IDX file's bytes (gzip-compressed when they start with the gzip magic). `name` is
// used in error messages. Throws halibit::Error.
IdxArray parse_idx(const uint8_t* bytes, size_t size, const std::string& name);
IdxArray read_idx(const std::string& path);

// The image and label files of one split in `dir`: <split>-images-idx3-ubyte and
// <split>-labels-idx1-ubyte, each with or without .gz. Throws when either is missing or the
// counts differ.
struct IdxDataset {
    IdxArray images;  // [N, H, W] or [N, H, W, C]
    IdxArray labels;  // [N]
    std::string images_path, labels_path;
};
IdxDataset read_idx_dataset(const std::string& dir, const std::string& split);

}  // namespace halibit
