// Decoding JPEG (libjpeg-turbo) and PNG (libpng) images and converting them to a model's input.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace halibit {

// Images larger than this are refused from their header, before any pixel is decoded.
constexpr int64_t kMaxImagePixels = int64_t(1) << 26;  // 64 Mpixel

struct Image {
    int width = 0, height = 0, channels = 0;  // channels: 1 (gray) or 3 (RGB)
    std::vector<uint8_t> pixels;              // row-major, interleaved
};

// Decodes JPEG or PNG bytes (told apart by their signature). `name` is used in error messages.
// Corrupt or truncated data is an error, not a partly gray image. Throws halibit::Error.
Image decode_image(const uint8_t* bytes, size_t size, const std::string& name);
Image read_image(const std::string& path);

// The uint8 HWC input of a model: converted to `color` ("gray": ITU-R BT.601 luma, or "rgb")
// and resized to height x width by area averaging (each output pixel is the mean of the source
// area it covers; sizes that already match are copied unchanged).
std::vector<uint8_t> to_model_input(const Image& image, int height, int width, const std::string& color);

}  // namespace halibit
