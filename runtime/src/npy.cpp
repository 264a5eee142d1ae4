// NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// the magic "\x93NUMPY", a version byte pair, the header length (uint16 for 1.0, uint32 for 2.0
// and 3.0), then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), }
// padded with spaces and a newline, then the raw data.
#include "halibit/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "halibit/error.h"
#include "read_file.h"

namespace halibit {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// Bytes per element of a descr without byte order; 0 if unsupported.
int item_size(const std::string& dtype) {
    if (dtype == "u1" || dtype == "i1") return 1;
    if (dtype == "i4" || dtype == "f4") return 4;
    if (dtype == "i8" || dtype == "f8") return 8;
    return 0;
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t i = 0; i < shape.size(); i++) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    if (shape.size() == 1) s += ",";
    return s + ")";
}

// A small parser for the header: a Python dict literal whose values are strings, booleans or
// tuples of non-negative integers.
class HeaderParser {
public:
    HeaderParser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

    void parse(std::string& descr, bool& fortran_order, std::vector<int64_t>& shape) {
        bool have_descr = false, have_order = false, have_shape = false;
        expect('{');
        skip_space();
        while (peek() != '}') {
            const std::string key = parse_string("a key");
            expect(':');
            skip_space();
            if (key == "descr") {
                if (peek() != '\'' && peek() != '"')
                    fail("'descr' is not a simple dtype string (structured arrays are not supported)");
                descr = parse_string("the 'descr' value");
                have_descr = true;
            } else if (key == "fortran_order") {
                fortran_order = parse_bool();
                have_order = true;
            } else if (key == "shape") {
                shape = parse_shape();
                have_shape = true;
            } else {
                fail("unexpected key '" + key + "'");
            }
            skip_space();
            if (peek() == ',') {
                pos_++;
                skip_space();
            } else if (peek() != '}') {
                fail("expected ',' or '}' at offset " + std::to_string(pos_));
            }
        }
        pos_++;
        if (!have_descr) fail("key 'descr' is missing");
        if (!have_order) fail("key 'fortran_order' is missing");
        if (!have_shape) fail("key 'shape' is missing");
        skip_space();
        if (pos_ != s_.size()) fail("unexpected text after the dict");
    }

private:
    [[noreturn]] void fail(const std::string& what) const { throw Error(name_ + ": bad .npy header: " + what); }

    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            pos_++;
    }
    void expect(char c) {
        skip_space();
        if (peek() != c) fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
        pos_++;
    }
    std::string parse_string(const char* what) {
        skip_space();
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail(std::string("expected a string as ") + what);
        const size_t end = s_.find(quote, pos_ + 1);
        if (end == std::string::npos) fail("unterminated string");
        std::string v = s_.substr(pos_ + 1, end - pos_ - 1);
        pos_ = end + 1;
        return v;
    }
    bool parse_bool() {
        if (s_.compare(pos_, 4, "True") == 0) {
            pos_ += 4;
            return true;
        }
        if (s_.compare(pos_, 5, "False") == 0) {
            pos_ += 5;
            return false;
        }
        fail("'fortran_order' is not True or False");
    }
    std::vector<int64_t> parse_shape() {
        std::vector<int64_t> shape;
        if (peek() != '(') fail("'shape' is not a tuple");
        pos_++;
        skip_space();
        while (peek() != ')') {
            if (peek() < '0' || peek() > '9') fail("'shape' holds something other than non-negative integers");
            int64_t v = 0;
            while (peek() >= '0' && peek() <= '9') {
                const int d = peek() - '0';
                if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("a dimension of 'shape' overflows int64");
                v = v * 10 + d;
                pos_++;
            }
            if (peek() == 'L') pos_++;  // Python 2 long
            shape.push_back(v);
            skip_space();
            if (peek() == ',') {
                pos_++;
                skip_space();
            } else if (peek() != ')') {
                fail("expected ',' or ')' in 'shape'");
            }
        }
        pos_++;
        return shape;
    }

    const std::string& s_;
    const std::string& name_;
    size_t pos_ = 0;
};

uint32_t read_le(const uint8_t* p, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

}  // namespace

int64_t NpyArray::elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& name) {
    if (bytes.size() < kMagicSize || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0)
        throw Error(name + ": not a NumPy .npy file (bad magic)");
    if (bytes.size() < kMagicSize + 2) throw Error(name + ": truncated .npy file (no version)");
    const int major = bytes[6], minor = bytes[7];
    if (major < 1 || major > 3 || minor != 0)
        throw Error(name + ": unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                    " (expected 1.0, 2.0 or 3.0)");
    const int len_bytes = major == 1 ? 2 : 4;
    const size_t header_start = 8 + len_bytes;
    if (bytes.size() < header_start) throw Error(name + ": truncated .npy file (no header length)");
    const size_t header_len = read_le(bytes.data() + 8, len_bytes);
    if (bytes.size() - header_start < header_len)
        throw Error(name + ": truncated .npy file (header of " + std::to_string(header_len) + " bytes, file has " +
                    std::to_string(bytes.size() - header_start) + " after the header length)");
    const std::string header(reinterpret_cast<const char*>(bytes.data()) + header_start, header_len);

    std::string descr;
    bool fortran_order = false;
    NpyArray a;
    HeaderParser(header, name).parse(descr, fortran_order, a.shape);

    if (descr.size() < 2) throw Error(name + ": unsupported dtype '" + descr + "'");
    const char order = descr[0];
    std::string dtype = descr;
    if (order == '<' || order == '|' || order == '>' || order == '=') dtype = descr.substr(1);
    const int size = item_size(dtype);
    if (size == 0)
        throw Error(name + ": unsupported dtype '" + descr + "' (expected u1, i1, i4, i8, f4 or f8, little-endian)");
    if (order == '>' && size > 1) throw Error(name + ": big-endian dtype '" + descr + "' is not supported");
    if (fortran_order)
        throw Error(name + ": Fortran-order (column-major) arrays are not supported; save a C-order array");
    a.dtype = dtype;

    // Element count and byte size without overflow.
    const int64_t max_elements = std::numeric_limits<int64_t>::max() / size;
    int64_t n = 1;
    for (int64_t d : a.shape) {
        if (d != 0 && n > max_elements / d)
            throw Error(name + ": shape " + shape_string(a.shape) + " is too large (the byte size overflows)");
        n *= d;
    }
    const uint64_t nbytes = uint64_t(n) * uint64_t(size);
    const uint64_t available = bytes.size() - header_start - header_len;
    if (available < nbytes)
        throw Error(name + ": truncated data: shape " + shape_string(a.shape) + " of " + descr + " needs " +
                    std::to_string(nbytes) + " bytes, the file has " + std::to_string(available));
    const auto* begin = bytes.data() + header_start + header_len;
    a.data.assign(begin, begin + nbytes);
    return a;
}

NpyArray read_npy(const std::string& path) {
    return parse_npy(read_file(path, std::numeric_limits<int64_t>::max()), path);
}

void write_npy(const std::string& path, const std::string& dtype, const std::vector<int64_t>& shape, const void* data) {
    std::string t = dtype;
    if (!t.empty() && (t[0] == '<' || t[0] == '|')) t = t.substr(1);
    const int size = item_size(t);
    if (size == 0) throw Error(path + ": cannot write dtype '" + dtype + "' (expected u1, i1, i4, i8, f4 or f8)");
    uint64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw Error(path + ": cannot write negative dimension in shape " + shape_string(shape));
        if (d != 0 && n > uint64_t(std::numeric_limits<int64_t>::max() / size) / uint64_t(d))
            throw Error(path + ": shape " + shape_string(shape) + " is too large");
        n *= uint64_t(d);
    }
    const std::string descr = (size == 1 ? "|" : "<") + t;
    std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
    // Version 1.0: magic (6) + version (2) + uint16 length (2) + header ending in '\n', padded
    // with spaces so the data starts at a multiple of 64 bytes.
    const size_t unpadded = 10 + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';
    if (header.size() > 65535) throw Error(path + ": shape " + shape_string(shape) + " makes too long a .npy header");

    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(path + ": cannot create: " + std::strerror(errno));
    f.write(kMagic, kMagicSize);
    const char version_and_len[4] = {1, 0, char(header.size() & 0xff), char(header.size() >> 8)};
    f.write(version_and_len, 4);
    f.write(header.data(), std::streamsize(header.size()));
    if (n) f.write(static_cast<const char*>(data), std::streamsize(n * size));
    f.close();
    if (!f) throw Error(path + ": cannot write: " + std::strerror(errno));
}

}  // namespace halibit
