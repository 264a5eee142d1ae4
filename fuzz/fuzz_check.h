// What every fuzz target does with a finding: print it and abort (libFuzzer then keeps the
// input), and what every parser's error must look like: a message that starts with the name of
// the file it was given.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <string>

#include "halibit/error.h"

namespace halibit::fuzz {

[[noreturn]] inline void fail(const char* target, const char* what, const std::string& detail) {
    std::fprintf(stderr, "fuzz_%s: %s: %s\n", target, what, detail.c_str());
    std::abort();
}

inline void expect_names_file(const Error& e, const std::string& file, const char* target) {
    if (std::string(e.what()).rfind(file + ": ", 0) != 0) fail(target, "message does not start with the file name", e.what());
}

}  // namespace halibit::fuzz
