#include "halibit/idx.h"

#include <zlib.h>

#include <algorithm>
#include <iterator>
#include <sys/stat.h>

#include "halibit/error.h"
#include "read_file.h"

namespace halibit {
namespace {

bool is_gzip(const uint8_t* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

// Streams a gzip member out of memory; pull(n) returns the next n bytes (fewer at the end).
class Gunzip {
public:
    Gunzip(const uint8_t* bytes, size_t size, const std::string& name) : name_(name) {
        if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw Error(name + ": zlib could not start");
        z_.next_in = const_cast<Bytef*>(bytes);
        z_.avail_in = uInt(std::min<size_t>(size, 1u << 30));
        rest_ = size - z_.avail_in;
    }
    ~Gunzip() { inflateEnd(&z_); }
    Gunzip(const Gunzip&) = delete;
    Gunzip& operator=(const Gunzip&) = delete;

    // Appends up to n bytes to out; returns how many. `out` grows with the data inflated so far
    // (at most doubling), not by n: a small file declaring a huge shape fails before much is
    // allocated.
    size_t pull(std::vector<uint8_t>& out, size_t n) {
        const size_t start = out.size();
        size_t got = 0;
        while (got < n && !done_) {
            const size_t want = std::min<size_t>({n - got, std::max<size_t>(got, 1u << 16), 1u << 30});
            out.resize(start + got + want);
            z_.next_out = out.data() + start + got;
            z_.avail_out = uInt(want);
            const int rc = inflate(&z_, Z_NO_FLUSH);
            got += want - z_.avail_out;
            if (rc == Z_STREAM_END) done_ = true;
            else if (rc == Z_BUF_ERROR && z_.avail_in == 0 && rest_ == 0)
                throw Error(name_ + ": gzip data ends early (truncated file)");
            else if (rc != Z_OK && rc != Z_BUF_ERROR)
                throw Error(name_ + ": corrupt gzip data (" + (z_.msg ? z_.msg : "zlib error " + std::to_string(rc)) + ")");
            if (z_.avail_in == 0 && rest_ > 0) {
                z_.avail_in = uInt(std::min<size_t>(rest_, 1u << 30));
                rest_ -= z_.avail_in;
            }
        }
        out.resize(start + got);
        return got;
    }
    bool done() const { return done_; }

private:
    z_stream z_{};
    std::string name_;
    size_t rest_ = 0;
    bool done_ = false;
};

// Reads the header (shape) from the first bytes; returns the header length.
size_t parse_header(const uint8_t* p, size_t n, const std::string& name, std::vector<int64_t>& shape,
                    int64_t& count) {
    if (n < 4) throw Error(name + ": shorter than the 4-byte IDX magic");
    if (p[0] != 0 || p[1] != 0) throw Error(name + ": not an IDX file (the magic must start with two zero bytes)");
    if (p[2] != 0x08)
        throw Error(name + ": IDX element type 0x" + std::string(1, "0123456789abcdef"[p[2] >> 4]) +
                    std::string(1, "0123456789abcdef"[p[2] & 15]) + " is not supported (only unsigned bytes, 0x08)");
    const int ndim = p[3];
    if (ndim < 1 || ndim > 4) throw Error(name + ": IDX dimension count " + std::to_string(ndim) + " is not 1..4");
    const size_t head = 4 + 4 * size_t(ndim);
    if (n < head) throw Error(name + ": IDX header is truncated (" + std::to_string(ndim) + " sizes declared)");
    shape.clear();
    count = 1;
    for (int d = 0; d < ndim; d++) {
        const uint8_t* s = p + 4 + 4 * d;
        const int64_t v = (int64_t(s[0]) << 24) | (int64_t(s[1]) << 16) | (int64_t(s[2]) << 8) | s[3];
        shape.push_back(v);
        count *= v;  // each v < 2^32 and count stays <= kMaxIdxBytes below, so no overflow
        if (count > kMaxIdxBytes)
            throw Error(name + ": IDX shape declares more than " + std::to_string(kMaxIdxBytes) +
                        " bytes of data (dimension " + std::to_string(d) + " is " + std::to_string(v) + ")");
    }
    return head;
}

std::string shape_text(const std::vector<int64_t>& s) {
    std::string t = "[";
    for (size_t i = 0; i < s.size(); i++) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
}

}  // namespace

IdxArray parse_idx(const uint8_t* bytes, size_t size, const std::string& name) {
    IdxArray a;
    int64_t count = 0;
    if (!is_gzip(bytes, size)) {
        const size_t head = parse_header(bytes, size, name, a.shape, count);
        if (size - head != size_t(count))
            throw Error(name + ": IDX shape " + shape_text(a.shape) + " needs " + std::to_string(count) +
                        " data bytes, the file has " + std::to_string(size - head));
        a.data.assign(bytes + head, bytes + size);
        return a;
    }
    Gunzip z(bytes, size, name);
    std::vector<uint8_t> head;
    z.pull(head, 4);
    const size_t ndim = head.size() == 4 ? head[3] : 0;
    if (ndim <= 4) z.pull(head, 4 * ndim);
    parse_header(head.data(), head.size(), name, a.shape, count);
    z.pull(a.data, size_t(count));
    if (a.data.size() != size_t(count))
        throw Error(name + ": IDX shape " + shape_text(a.shape) + " needs " + std::to_string(count) +
                    " data bytes, the file has " + std::to_string(a.data.size()));
    std::vector<uint8_t> extra;
    if (!z.done() && z.pull(extra, 1) > 0)
        throw Error(name + ": data continues past the IDX shape " + shape_text(a.shape));
    return a;
}

IdxArray read_idx(const std::string& path) {
    const std::vector<uint8_t> bytes = read_file(path, 2 * kMaxIdxBytes);
    return parse_idx(bytes.data(), bytes.size(), path);
}

IdxDataset read_idx_dataset(const std::string& dir, const std::string& split) {
    auto find = [&](const std::string& stem) {
        for (const std::string& p : {dir + "/" + stem, dir + "/" + stem + ".gz"}) {
            struct stat st{};
            if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return p;
        }
        throw Error(dir + ": no " + stem + " or " + stem + ".gz (Debian's dataset-fashion-mnist installs them in "
                    "/usr/share/datasets/fashion-mnist)");
    };
    IdxDataset d;
    d.images_path = find(split + "-images-idx3-ubyte");
    d.labels_path = find(split + "-labels-idx1-ubyte");
    d.images = read_idx(d.images_path);
    d.labels = read_idx(d.labels_path);
    if (d.images.shape.size() < 3)
        throw Error(d.images_path + ": images must be [N, H, W] or [N, H, W, C], got " + shape_text(d.images.shape));
    if (d.labels.shape.size() != 1)
        throw Error(d.labels_path + ": labels must be [N], got " + shape_text(d.labels.shape));
    if (d.labels.shape[0] != d.images.shape[0])
        throw Error(d.labels_path + ": " + std::to_string(d.labels.shape[0]) + " labels for " +
                    std::to_string(d.images.shape[0]) + " images in " + d.images_path);
    return d;
}

}  // namespace halibit
