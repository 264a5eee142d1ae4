// The `halibit` command-line tool: info, run, bench, eval, classify.
//
// Errors are one line `halibit: <message>` on stderr: usage errors (unknown option, bad value)
// exit with 2, everything else (unreadable model, wrong input shape, ...) with 1.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <iostream>

#include "cli.h"
#include "halibit/error.h"

#ifndef HALIBIT_VERSION
#define HALIBIT_VERSION "unknown"
#endif

namespace {

using namespace halibit;
using namespace halibit::cli;

// A CLI11 validator from one of halibit's parse functions: the halibit::Error message becomes
// the usage error.
template <typename Parse>
CLI::Validator parsed_by(Parse parse) {
    return CLI::Validator(
        [parse](std::string& value) -> std::string {
            try {
                parse(value);
                return "";
            } catch (const Error& e) {
                return e.what();
            }
        },
        "");
}

// CLI::Range without its description in the option's type name ("N" instead of "INT:INT in [1 - 1024]").
CLI::Validator range(int lo, int hi) { return CLI::Range(lo, hi).description(""); }

void add_session_flags(CLI::App* app, SessionFlags& f) {
    app->add_option("--threads", f.threads, "threads of the kernels' thread pool")
        ->check(range(1, 1024))
        ->type_name("N")
        ->capture_default_str();
    app->add_option("--isa", f.isa, "instruction set: auto, avx512, avx2, scalar, arm64 or arm64_dotprod")
        ->check(parsed_by(parse_isa))
        ->type_name("ISA")
        ->capture_default_str();
    app->add_option("--kernels", f.kernels, "convolution kernels: auto, bitserial, u8 or lut")
        ->check(parsed_by(parse_kernel_choice))
        ->type_name("KERNELS")
        ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"halibit: ultra-low-bit quantized CNN inference", "halibit"};
    app.set_version_flag("--version", std::string("halibit ") + HALIBIT_VERSION);
    app.require_subcommand(1);

    InfoOptions info;
    CLI::App* info_cmd = app.add_subcommand("info", "describe a model: inputs, outputs, one row per layer, totals");
    info_cmd->add_option("model", info.model, "model file (.halibit)")->required()->type_name("MODEL");

    RunOptions run;
    CLI::App* run_cmd = app.add_subcommand("run", "classify uint8 images from a .npy file, write int32 logits");
    run_cmd->add_option("model", run.model, "model file (.halibit)")->required()->type_name("MODEL");
    run_cmd->add_option("-i,--input", run.input, "uint8 images [N, H, W, C] or [H, W, C]")
        ->required()
        ->type_name("NPY");
    run_cmd->add_option("-o,--output", run.output, "int32 logits [N, classes] to write")->required()->type_name("NPY");
    add_session_flags(run_cmd, run.session);
    run_cmd->add_option("--batch", run.batch, "images per Session::run call")
        ->check(range(1, 1 << 20))
        ->type_name("N")
        ->capture_default_str();

    BenchOptions bench;
    CLI::App* bench_cmd = app.add_subcommand("bench", "latency and per-layer profile on random input");
    bench_cmd->add_option("model", bench.model, "model file (.halibit)")->required()->type_name("MODEL");
    add_session_flags(bench_cmd, bench.session);
    bench_cmd->add_option("--batch", bench.batch, "images per run")
        ->check(range(1, 1 << 16))
        ->type_name("N")
        ->capture_default_str();
    bench_cmd->add_option("--repeat", bench.repeat, "timed runs")
        ->check(range(1, 1 << 24))
        ->type_name("N")
        ->capture_default_str();
    bench_cmd->add_option("--warmup", bench.warmup, "untimed runs before them")
        ->check(range(0, 1 << 24))
        ->type_name("N")
        ->capture_default_str();
    bench_cmd->add_option("--seed", bench.seed, "seed of the random input")->type_name("N")->capture_default_str();
    bench_cmd->add_option("--json", bench.json, "also write the results as JSON to this file")->type_name("FILE");

    EvalOptions eval;
    CLI::App* eval_cmd = app.add_subcommand("eval", "top-1 accuracy, confusion matrix and speed on an IDX dataset");
    eval_cmd->add_option("model", eval.model, "model file (.halibit)")->required()->type_name("MODEL");
    eval_cmd->add_option("--data", eval.data, "directory of <split>-images-idx3-ubyte[.gz] and <split>-labels-idx1-ubyte[.gz]")
        ->type_name("DIR")
        ->capture_default_str();
    eval_cmd->add_option("--split", eval.split, "file name prefix of the split")->type_name("NAME")->capture_default_str();
    eval_cmd->add_option("--limit", eval.limit, "evaluate the first N images only (0: all)")
        ->check(CLI::NonNegativeNumber.description(""))
        ->type_name("N")
        ->capture_default_str();
    eval_cmd->add_option("--batch", eval.batch, "images per Session::run call")
        ->check(range(1, 1 << 16))
        ->type_name("N")
        ->capture_default_str();
    eval_cmd->add_option("--predictions", eval.predictions, "write the predicted classes (uint8 [N]) to this .npy file")
        ->type_name("NPY");
    add_session_flags(eval_cmd, eval.session);

    ClassifyOptions classify;
    CLI::App* classify_cmd = app.add_subcommand("classify", "top classes of JPEG or PNG images, with probabilities");
    classify_cmd->add_option("model", classify.model, "model file (.halibit)")->required()->type_name("MODEL");
    classify_cmd->add_option("images", classify.images, "JPEG or PNG files")->required()->type_name("IMAGE...");
    classify_cmd->add_option("--top", classify.top, "classes shown per image")
        ->check(range(1, 1 << 20))
        ->type_name("K")
        ->capture_default_str();
    add_session_flags(classify_cmd, classify.session);

    // A first word that is neither an option nor a command: say so (CLI11 would only say that a
    // command is required).
    const std::vector<std::string> commands = {"info", "run", "bench", "eval", "classify"};
    if (argc < 2) {
        std::cerr << "halibit: a command is required (info, run, bench, eval or classify); see halibit --help\n";
        return 2;
    }
    const std::string first = argv[1];
    if (first[0] != '-' && std::find(commands.begin(), commands.end(), first) == commands.end()) {
        std::cerr << "halibit: unknown command '" << first
                  << "' (expected info, run, bench, eval or classify; see halibit --help)\n";
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        std::string help = "halibit --help";
        for (const CLI::App* sub : {info_cmd, run_cmd, bench_cmd, eval_cmd, classify_cmd})
            if (sub->parsed()) help = "halibit " + sub->get_name() + " --help";
        std::cerr << "halibit: " << e.what() << "; see " << help << "\n";
        return 2;
    }

    try {
        if (info_cmd->parsed()) return cmd_info(info);
        if (run_cmd->parsed()) return cmd_run(run);
        if (bench_cmd->parsed()) return cmd_bench(bench);
        if (eval_cmd->parsed()) return cmd_eval(eval);
        if (classify_cmd->parsed()) return cmd_classify(classify);
    } catch (const Error& e) {
        std::cerr << "halibit: " << e.what() << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "halibit: " << e.what() << "\n";
        return 1;
    }
    return 2;
}
