#include "halibit/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>

#include <jpeglib.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "halibit/error.h"
#include "read_file.h"

namespace halibit {
namespace {

// libjpeg reports errors through error_exit, which must not return: jump back to decode_jpeg
// with the message, which then throws (no C++ object is skipped by the jump).
struct JpegError {
    jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<JpegError*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}

// Warnings (level -1: corrupt data, premature end) are errors too: a truncated JPEG would
// otherwise decode to an image with a gray bottom.
void jpeg_message(j_common_ptr cinfo, int level) {
    if (level < 0) jpeg_fail(cinfo);
}

// Every scan of a progressive JPEG walks the whole image, so a small file with many scans of a
// large image decodes for a long time (883 scans of 64 Mpixel, 218 KB: 22 s). Encoders write
// at most a few dozen scans; libjpeg calls the progress monitor between input rows and scans.
constexpr int kMaxJpegScans = 100;

void jpeg_progress(j_common_ptr cinfo) {
    const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
    if (d->input_scan_number > kMaxJpegScans) {
        auto* e = reinterpret_cast<JpegError*>(cinfo->err);
        snprintf(e->message, sizeof e->message, "more than %d scans (encoders write a few dozen at most)",
                      kMaxJpegScans);
        longjmp(e->jump, 1);
    }
}

void check_size(int64_t w, int64_t h, const std::string& name) {
    if (w < 1 || h < 1) throw Error(name + ": image has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
    if (w * h > kMaxImagePixels)
        throw Error(name + ": image is " + std::to_string(w) + "x" + std::to_string(h) + ", more than " +
                    std::to_string(kMaxImagePixels) + " pixels");
}

// Returns an empty string on success, the error message otherwise.
std::string decode_jpeg(const uint8_t* bytes, size_t size, const std::string& name, Image& out) {
    jpeg_decompress_struct cinfo;
    JpegError err;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = jpeg_fail;
    err.mgr.emit_message = jpeg_message;
    err.message[0] = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return std::string("corrupt JPEG: ") + err.message;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_progress_mgr progress{};
    progress.progress_monitor = jpeg_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, bytes, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    const int64_t w = cinfo.image_width, h = cinfo.image_height;
    if (w < 1 || h < 1 || w * h > kMaxImagePixels) {
        jpeg_destroy_decompress(&cinfo);
        check_size(w, h, name);  // throws
    }
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    out.width = int(cinfo.output_width);
    out.height = int(cinfo.output_height);
    out.channels = cinfo.output_components;
    out.pixels.resize(size_t(out.width) * out.height * out.channels);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out.pixels.data() + size_t(cinfo.output_scanline) * out.width * out.channels;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return "";
}

Image decode_png(const uint8_t* bytes, size_t size, const std::string& name) {
    png_image png;
    std::memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, bytes, size))
        throw Error(name + ": corrupt PNG: " + png.message);
    if (png.width < 1 || png.height < 1 || int64_t(png.width) * png.height > kMaxImagePixels) {
        png_image_free(&png);
        check_size(png.width, png.height, name);
    }
    const bool gray = (png.format & PNG_FORMAT_FLAG_COLOR) == 0;
    png.format = gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;  // alpha is composited onto black
    Image out;
    out.width = int(png.width);
    out.height = int(png.height);
    out.channels = gray ? 1 : 3;
    out.pixels.resize(PNG_IMAGE_SIZE(png));
    if (!png_image_finish_read(&png, nullptr, out.pixels.data(), 0, nullptr)) {
        const std::string msg = png.message;
        png_image_free(&png);
        throw Error(name + ": corrupt PNG: " + msg);
    }
    return out;
}

}  // namespace

Image decode_image(const uint8_t* bytes, size_t size, const std::string& name) {
    if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
        Image out;
        const std::string error = decode_jpeg(bytes, size, name, out);
        if (!error.empty()) throw Error(name + ": " + error);
        return out;
    }
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && std::memcmp(bytes, png_magic, 8) == 0) return decode_png(bytes, size, name);
    throw Error(name + ": not a JPEG or PNG file (unknown signature)");
}

Image read_image(const std::string& path) {
    const std::vector<uint8_t> bytes = read_file(path, int64_t(1) << 30);
    return decode_image(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> to_model_input(const Image& image, int height, int width, const std::string& color) {
    if (color != "gray" && color != "rgb") throw Error("model input color '" + color + "' is not gray or rgb");
    if (height < 1 || width < 1) throw Error("model input size " + std::to_string(height) + "x" + std::to_string(width));
    const int C = color == "gray" ? 1 : 3;
    const int W0 = image.width, H0 = image.height, C0 = image.channels;

    // Colour conversion first, at the source size, in float.
    std::vector<float> src(size_t(W0) * H0 * C);
    for (size_t p = 0; p < size_t(W0) * H0; p++) {
        const uint8_t* px = image.pixels.data() + p * C0;
        if (C == 1)
            src[p] = C0 == 1 ? px[0] : 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
        else
            for (int c = 0; c < 3; c++) src[p * 3 + c] = px[C0 == 1 ? 0 : c];
    }

    // Area averaging: output pixel (y, x) covers source [y * H0 / H, (y + 1) * H0 / H) and likewise in x.
    std::vector<uint8_t> out(size_t(width) * height * C);
    const double sy = double(H0) / height, sx = double(W0) / width;
    std::vector<double> acc(C);
    for (int y = 0; y < height; y++) {
        const double y0 = y * sy, y1 = (y + 1) * sy;
        for (int x = 0; x < width; x++) {
            const double x0 = x * sx, x1 = (x + 1) * sx;
            std::fill(acc.begin(), acc.end(), 0.0);
            double area = 0;
            for (int yy = int(y0); yy < std::min(H0, int(std::ceil(y1))); yy++) {
                const double wy = std::min(y1, yy + 1.0) - std::max(y0, double(yy));
                if (wy <= 0) continue;
                for (int xx = int(x0); xx < std::min(W0, int(std::ceil(x1))); xx++) {
                    const double wx = std::min(x1, xx + 1.0) - std::max(x0, double(xx));
                    if (wx <= 0) continue;
                    const float* px = src.data() + (size_t(yy) * W0 + xx) * C;
                    for (int c = 0; c < C; c++) acc[c] += wy * wx * px[c];
                    area += wy * wx;
                }
            }
            for (int c = 0; c < C; c++)
                out[(size_t(y) * width + x) * C + c] = uint8_t(std::clamp(std::lround(acc[c] / area), 0L, 255L));
        }
    }
    return out;
}

}  // namespace halibit
