// The `halibit` command-line tool: one function per subcommand and the helpers they share.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "halibit/model.h"
#include "halibit/session.h"

namespace halibit::cli {

struct InfoOptions {
    std::string model;
};
int cmd_info(const InfoOptions& o);

// The session flags `run` and `bench` share (names as in halibit::SessionOptions).
struct SessionFlags {
    int threads = 1;
    std::string isa = "auto";
    std::string kernels = "auto";
    SessionOptions options() const;  // parse_isa / parse_kernel_choice
};

struct RunOptions {
    std::string model, input, output;
    SessionFlags session;
    int batch = 32;  // images per Session::run call
};
int cmd_run(const RunOptions& o);

struct BenchOptions {
    std::string model;
    SessionFlags session;
    int batch = 1, repeat = 20, warmup = 3;
    uint32_t seed = 1;
    std::string json;
};
int cmd_bench(const BenchOptions& o);

struct EvalOptions {
    std::string model, data = "/usr/share/datasets/fashion-mnist", split = "t10k", predictions;
    SessionFlags session;
    int batch = 100;
    int64_t limit = 0;  // 0: every image
};
int cmd_eval(const EvalOptions& o);

struct ClassifyOptions {
    std::string model;
    std::vector<std::string> images;
    SessionFlags session;
    int top = 3;
};
int cmd_classify(const ClassifyOptions& o);

// --- helpers (common.cpp) ---

// "28x28x1"
std::string shape_string(const TensorSpec& t);
// Prepares `session` for `batch` images and prints its kernel notes (layers that a forced
// --kernels choice cannot run) to stderr.
void prepare_and_note(Session& session, int batch);
// "[N, 28, 28, 1]"-style list
std::string list_string(const std::vector<int64_t>& v);
// A count with a unit: 640, 102.4K, 1.81M, 3.63G.
std::string human_count(int64_t n);
// Fixed-point number: format_fixed(1.2345, 2) == "1.23".
std::string format_fixed(double v, int decimals);
// The ISA an `auto` session runs on this machine (the most specific one available).
// Peak resident set size of this process in bytes (getrusage).
int64_t peak_rss_bytes();

// A progress bar on stderr for long work: redrawn in place on a terminal, one line every 10 s
// otherwise, and a final line when done; work shorter than 0.5 s (10 s without a terminal)
// shows nothing.
class Progress {
public:
    Progress(int64_t total, std::string what);
    void update(int64_t done);

private:
    int64_t total_;
    std::string what_;
    bool tty_, shown_ = false;
    double start_, last_ = -1e9;
};

// A plain text table: columns sized to their widest cell; numeric columns right-aligned.
class Table {
public:
    struct Column {
        std::string title;
        bool right = false;
    };
    explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void rule() { rows_.emplace_back(); }  // a separator line
    std::string str() const;

private:
    std::vector<Column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace halibit::cli
