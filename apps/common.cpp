// Helpers shared by the subcommands of the `halibit` tool.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>

#include "cli.h"

namespace halibit::cli {

SessionOptions SessionFlags::options() const {
    SessionOptions o;
    o.threads = threads;
    o.isa = parse_isa(isa);
    o.kernels = parse_kernel_choice(kernels);
    return o;
}

std::string shape_string(const TensorSpec& t) {
    return std::to_string(t.h) + "x" + std::to_string(t.w) + "x" + std::to_string(t.c);
}

std::string list_string(const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

std::string format_fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string human_count(int64_t n) {
    if (n < 1000) return std::to_string(n);
    if (n < 1000000) return format_fixed(n / 1e3, 1) + "K";
    if (n < 1000000000) return format_fixed(n / 1e6, 2) + "M";
    return format_fixed(n / 1e9, 2) + "G";
}

Isa resolved_isa(Isa requested) {
    if (requested != Isa::automatic) return requested;
    for (Isa i : {Isa::avx512, Isa::avx2, Isa::arm64})
        if (isa_available(i)) return i;
    return Isa::scalar;
}

int64_t peak_rss_bytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return int64_t(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

std::string Table::str() const {
    std::vector<size_t> width(columns_.size());
    for (size_t c = 0; c < columns_.size(); c++) width[c] = columns_[c].title.size();
    for (const auto& r : rows_)
        for (size_t c = 0; c < r.size() && c < width.size(); c++) width[c] = std::max(width[c], r[c].size());
    size_t total = 0;
    for (size_t w : width) total += w + 2;
    total = total >= 2 ? total - 2 : 0;

    auto line = [&](const std::vector<std::string>& cells) {
        std::string s;
        for (size_t c = 0; c < columns_.size(); c++) {
            const std::string& cell = c < cells.size() ? cells[c] : std::string();
            const size_t pad = width[c] - cell.size();
            if (columns_[c].right) s += std::string(pad, ' ') + cell;
            else s += cell + (c + 1 < columns_.size() ? std::string(pad, ' ') : "");
            if (c + 1 < columns_.size()) s += "  ";
        }
        while (!s.empty() && s.back() == ' ') s.pop_back();
        return s + "\n";
    };
    std::vector<std::string> titles;
    for (const auto& c : columns_) titles.push_back(c.title);
    std::string out = line(titles) + std::string(total, '-') + "\n";
    for (const auto& r : rows_) out += r.empty() ? std::string(total, '-') + "\n" : line(r);
    return out;
}

}  // namespace halibit::cli
