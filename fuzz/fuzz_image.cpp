// Fuzzes the JPEG / PNG path of `halibit classify`: decode_image, then to_model_input to a
// Fashion-MNIST-sized gray input (and a small RGB one). Every input must end in an image or a
// halibit::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "halibit/image.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) { halibit::fuzz::fail("image", what, detail); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    halibit::Image image;
    try {
        image = halibit::decode_image(data, size, "fuzz.jpg");
    } catch (const halibit::Error& e) {
        halibit::fuzz::expect_names_file(e, "fuzz.jpg", "image");
        return 0;
    }
    if (image.width < 1 || image.height < 1 || int64_t(image.width) * image.height > halibit::kMaxImagePixels ||
        (image.channels != 1 && image.channels != 3) ||
        image.pixels.size() != size_t(image.width) * image.height * image.channels)
        fail("image", std::to_string(image.width) + "x" + std::to_string(image.height) + "x" + std::to_string(image.channels) +
                          ", " + std::to_string(image.pixels.size()) + " bytes");
    try {
        if (halibit::to_model_input(image, 28, 28, "gray").size() != 28 * 28) fail("to_model_input", "gray size");
        if (halibit::to_model_input(image, 5, 3, "rgb").size() != 5 * 3 * 3) fail("to_model_input", "rgb size");
    } catch (const halibit::Error& e) {
        fail("to_model_input failed on a decoded image", e.what());
    }
    return 0;
}
