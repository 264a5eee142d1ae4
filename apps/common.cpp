// Helpers shared by the subcommands of the `halibit` tool.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include "cli.h"

namespace halibit::cli {

SessionOptions SessionFlags::options() const {
    SessionOptions o;
    o.threads = threads;
    o.isa = parse_isa(isa);
    o.kernels = parse_kernel_choice(kernels);
    return o;
}

void prepare_and_note(Session& session, int batch) {
    session.prepare(batch);
    for (const std::string& note : session.kernel_notes())
        std::cerr << "halibit: note: --kernels " << kernel_choice_name(session.options().kernels) << ": " << note << "\n";
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

int64_t peak_rss_bytes() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return int64_t(u.ru_maxrss) * 1024;  // Linux: kilobytes
}

namespace {
double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Progress::Progress(int64_t total, std::string what)
    : total_(std::max<int64_t>(total, 1)), what_(std::move(what)), tty_(isatty(2)), start_(now_seconds()) {}

void Progress::update(int64_t done) {
    const double t = now_seconds();
    const bool finished = done >= total_;
    // Quick work shows nothing; a terminal gets a bar redrawn in place, a log one line per 10 s.
    if (t - start_ < (tty_ ? 0.5 : 10.0) || (!finished && t - last_ < (tty_ ? 0.1 : 10.0))) return;
    if (finished && !shown_) return;
    last_ = t;
    shown_ = true;
    const int width = 30, filled = int(width * std::min<int64_t>(done, total_) / total_);
    const double rate = done / std::max(t - start_, 1e-9);
    std::fprintf(stderr, "%s%s [%s%s] %lld/%lld, %.0f/s%s", tty_ ? "\r" : "", what_.c_str(),
                 std::string(size_t(filled), '#').c_str(), std::string(size_t(width - filled), ' ').c_str(),
                 (long long)done, (long long)total_, rate, tty_ && !finished ? "" : "\n");
    std::fflush(stderr);
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
