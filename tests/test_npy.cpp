// NumPy .npy reading and writing: round trips for every dtype and rank 0..4, byte-exact
// agreement with what numpy.save writes, and every malformed input as a halibit::Error that
// names the file and what is wrong.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "halibit/error.h"
#include "halibit/npy.h"

namespace halibit {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() { return fs::path(::testing::TempDir()) / ("halibit_test_npy." + std::to_string(getpid())); }

class RemoveTempDir : public ::testing::Environment {
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(temp_dir(), ec);
    }
};
::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

std::string temp_path(const std::string& leaf) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const fs::path dir = temp_dir();
    fs::create_directories(dir);
    std::string file = std::string(info->test_suite_name()) + "." + info->name() + "." + leaf;
    for (char& c : file)
        if (c == '/') c = '_';
    return (dir / file).string();
}

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// A .npy file with the given version and header text (padded with spaces and '\n' to 64 bytes).
std::vector<uint8_t> make_npy(int major, const std::string& dict, const std::vector<uint8_t>& data, bool pad = true) {
    std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(major), 0};
    const size_t len_bytes = major == 1 ? 2 : 4;
    std::string header = dict;
    if (pad) {
        const size_t unpadded = b.size() + len_bytes + header.size() + 1;
        header.append((64 - unpadded % 64) % 64, ' ');
        header += '\n';
    }
    for (size_t i = 0; i < len_bytes; i++) b.push_back(uint8_t(header.size() >> (8 * i)));
    b.insert(b.end(), header.begin(), header.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

std::string dict(const std::string& descr, const std::string& shape, const std::string& order = "False") {
    return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }";
}

// The message of the halibit::Error `f` throws ("" if none).
template <typename F>
std::string error_of(F f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

#define EXPECT_NPY_ERROR(bytes, ...)                                                             \
    do {                                                                                          \
        const std::string msg = error_of([&] { parse_npy(bytes, "bad.npy"); });                   \
        ASSERT_FALSE(msg.empty()) << "no error";                                                  \
        EXPECT_EQ(msg.rfind("bad.npy: ", 0), 0u) << msg;                                          \
        for (const char* part : {__VA_ARGS__}) EXPECT_NE(msg.find(part), std::string::npos) << msg; \
    } while (0)

struct DtypeCase {
    const char* dtype;
    int size;
};
void PrintTo(const DtypeCase& c, std::ostream* os) { *os << c.dtype; }

class NpyRoundTrip : public ::testing::TestWithParam<DtypeCase> {};

TEST_P(NpyRoundTrip, EveryRankZeroToFour) {
    const DtypeCase dc = GetParam();
    std::mt19937 rng(1234);
    const std::vector<std::vector<int64_t>> shapes = {{}, {5}, {1}, {0}, {3, 4}, {2, 1, 7}, {2, 3, 4, 5}, {1, 3, 0, 2}};
    for (const auto& shape : shapes) {
        int64_t n = 1;
        for (auto d : shape) n *= d;
        std::vector<uint8_t> data(size_t(n) * dc.size);
        for (auto& b : data) b = uint8_t(rng());
        const std::string path = temp_path(std::string(dc.dtype) + "_" + std::to_string(shape.size()) + ".npy");
        write_npy(path, dc.dtype, shape, data.data());

        const auto bytes = read_bytes(path);
        ASSERT_GE(bytes.size(), 10u);
        const size_t header_len = bytes[8] | (bytes[9] << 8);
        EXPECT_EQ(bytes[6], 1);  // version 1.0
        EXPECT_EQ(bytes[7], 0);
        EXPECT_EQ((10 + header_len) % 64, 0u) << "data is not 64-byte aligned";
        EXPECT_EQ(bytes[10 + header_len - 1], '\n');
        EXPECT_EQ(bytes.size(), 10 + header_len + data.size());

        const NpyArray a = read_npy(path);
        EXPECT_EQ(a.dtype, dc.dtype);
        EXPECT_EQ(a.shape, shape);
        EXPECT_EQ(a.elements(), n);
        EXPECT_EQ(a.data, data);
        std::remove(path.c_str());
    }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, NpyRoundTrip,
                         ::testing::Values(DtypeCase{"u1", 1}, DtypeCase{"i1", 1}, DtypeCase{"i4", 4},
                                           DtypeCase{"i8", 8}, DtypeCase{"f4", 4}, DtypeCase{"f8", 8}),
                         [](const auto& info) { return std::string(info.param.dtype); });

TEST(Npy, WritesExactlyWhatNumpySaveWrites) {
    // numpy 1.24: numpy.save(f, numpy.arange(6, dtype='<i4').reshape(2, 3))
    const std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
    std::vector<uint8_t> expected = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0x76, 0};
    expected.insert(expected.end(), header.begin(), header.end());
    expected.resize(127, ' ');
    expected.push_back('\n');
    for (int32_t v = 0; v < 6; v++)
        for (int i = 0; i < 4; i++) expected.push_back(uint8_t(v >> (8 * i)));
    ASSERT_EQ(expected.size(), 152u);

    const int32_t values[6] = {0, 1, 2, 3, 4, 5};
    const std::string path = temp_path("i4.npy");
    write_npy(path, "i4", {2, 3}, values);
    EXPECT_EQ(read_bytes(path), expected);
    std::remove(path.c_str());

    // A one-element tuple is written "(2,)" and one-byte types "|".
    const std::string path1 = temp_path("i1.npy");
    const int8_t v1[2] = {-1, 2};
    write_npy(path1, "i1", {2}, v1);
    const auto b = read_bytes(path1);
    const std::string h(b.begin() + 10, b.begin() + 10 + 0x76);
    EXPECT_EQ(h.rfind("{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", 0), 0u) << h;
    std::remove(path1.c_str());
}

TEST(Npy, AcceptsVersionsTwoAndThreeAndHeaderVariants) {
    const std::vector<uint8_t> data = {1, 0, 0, 0, 2, 0, 0, 0};
    for (int major : {1, 2, 3}) {
        const NpyArray a = parse_npy(make_npy(major, dict("<i4", "(2,)"), data), "v.npy");
        EXPECT_EQ(a.dtype, "i4");
        EXPECT_EQ(a.shape, (std::vector<int64_t>{2}));
        EXPECT_EQ(a.data, data);
    }
    // Keys in another order, double quotes, no trailing comma, no padding, '<u1' and '|u1'.
    const std::string dq = "{\"shape\": (1, 2), \"descr\": \"<u1\", \"fortran_order\": False}";
    const NpyArray b = parse_npy(make_npy(1, dq, {7, 9}, false), "b.npy");
    EXPECT_EQ(b.dtype, "u1");
    EXPECT_EQ(b.shape, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(b.data, (std::vector<uint8_t>{7, 9}));
    EXPECT_EQ(parse_npy(make_npy(1, dict("|u1", "()"), {5}), "c.npy").data, (std::vector<uint8_t>{5}));
    // Data beyond the shape is ignored.
    EXPECT_EQ(parse_npy(make_npy(1, dict("|i1", "(1,)"), {5, 6}), "d.npy").data, (std::vector<uint8_t>{5}));
    // Fortran order of a 1-element or empty array would still be refused: numpy never writes it.
}

TEST(NpyErrors, MissingFile) {
    const std::string msg = error_of([] { read_npy("/nonexistent/dir/x.npy"); });
    EXPECT_EQ(msg.rfind("/nonexistent/dir/x.npy: cannot open", 0), 0u) << msg;
}

TEST(NpyErrors, BadMagic) {
    EXPECT_NPY_ERROR(std::vector<uint8_t>{}, "bad magic");
    EXPECT_NPY_ERROR(std::vector<uint8_t>({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0}), "not a NumPy .npy file");
    auto b = make_npy(1, dict("<i4", "(1,)"), {0, 0, 0, 0});
    b[1] = 'n';
    EXPECT_NPY_ERROR(b, "bad magic");
}

TEST(NpyErrors, UnsupportedVersion) {
    auto b = make_npy(1, dict("<i4", "(1,)"), {0, 0, 0, 0});
    b[6] = 4;
    EXPECT_NPY_ERROR(b, "version 4.0");
    b[6] = 1;
    b[7] = 1;
    EXPECT_NPY_ERROR(b, "version 1.1");
}

TEST(NpyErrors, TruncatedHeader) {
    auto b = make_npy(1, dict("<i4", "(1,)"), {});
    b.resize(40);
    EXPECT_NPY_ERROR(b, "truncated", "header");
    b.resize(9);
    EXPECT_NPY_ERROR(b, "truncated");
    auto v2 = make_npy(2, dict("<i4", "(1,)"), {});
    v2.resize(11);
    EXPECT_NPY_ERROR(v2, "truncated");
}

TEST(NpyErrors, MalformedHeader) {
    EXPECT_NPY_ERROR(make_npy(1, "'descr': '<i4'", {}), "bad .npy header", "'{'");
    EXPECT_NPY_ERROR(make_npy(1, "{'descr': '<i4', 'shape': (1,), }", {0, 0, 0, 0}), "'fortran_order' is missing");
    EXPECT_NPY_ERROR(make_npy(1, "{'descr': '<i4', 'fortran_order': False}", {}), "'shape' is missing");
    EXPECT_NPY_ERROR(make_npy(1, "{'fortran_order': False, 'shape': ()}", {}), "'descr' is missing");
    EXPECT_NPY_ERROR(make_npy(1, dict("<i4", "(1,)").substr(0, 30), {}), "bad .npy header");
    EXPECT_NPY_ERROR(make_npy(1, dict("<i4", "(-1,)"), {}), "non-negative integers");
    EXPECT_NPY_ERROR(make_npy(1, dict("<i4", "[2, 3]"), {}), "'shape' is not a tuple");
    EXPECT_NPY_ERROR(make_npy(1, dict("<i4", "(1,)", "0"), {0, 0, 0, 0}), "'fortran_order' is not True or False");
    EXPECT_NPY_ERROR(make_npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (), 'x': 1}", {}),
                     "unexpected key 'x'");
    EXPECT_NPY_ERROR(make_npy(1, "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': ()}", {}),
                     "structured arrays are not supported");
}

TEST(NpyErrors, BigEndian) {
    EXPECT_NPY_ERROR(make_npy(1, dict(">i4", "(1,)"), {0, 0, 0, 1}), "big-endian", "'>i4'");
    EXPECT_NPY_ERROR(make_npy(1, dict(">f8", "()"), std::vector<uint8_t>(8)), "big-endian");
}

TEST(NpyErrors, FortranOrder) {
    EXPECT_NPY_ERROR(make_npy(1, dict("<i4", "(2, 2)", "True"), std::vector<uint8_t>(16)), "Fortran");
}

TEST(NpyErrors, UnknownDtype) {
    for (const char* d : {"<i2", "<u4", "<f2", "<c8", "|b1", "|S5", "<U3", "|O", "x"}) {
        const std::string quoted = std::string("'") + d + "'";  // outlives the macro's loop over the parts
        EXPECT_NPY_ERROR(make_npy(1, dict(d, "()"), std::vector<uint8_t>(16)), "unsupported dtype", quoted.c_str());
    }
}

TEST(NpyErrors, TruncatedData) {
    EXPECT_NPY_ERROR(make_npy(1, dict("<i4", "(2, 3)"), std::vector<uint8_t>(20)), "truncated data", "(2, 3)",
                     "needs 24 bytes", "has 20");
    EXPECT_NPY_ERROR(make_npy(3, dict("|u1", "(4,)"), {}), "truncated data");
}

TEST(NpyErrors, ShapeProductOverflow) {
    EXPECT_NPY_ERROR(make_npy(1, dict("<i8", "(4294967296, 4294967296)"), {}), "too large");
    EXPECT_NPY_ERROR(make_npy(1, dict("|u1", "(3037000500, 3037000500)"), {}), "too large");
    EXPECT_NPY_ERROR(make_npy(1, dict("<f8", "(1152921504606846976,)"), {}), "too large");  // 2^60 * 8
    EXPECT_NPY_ERROR(make_npy(1, dict("|u1", "(99999999999999999999,)"), {}), "overflows");
    // A zero anywhere makes it empty, however large the rest.
    EXPECT_EQ(parse_npy(make_npy(1, dict("<i8", "(4294967296, 0, 4294967296)"), {}), "z.npy").elements(), 0);
}

TEST(NpyErrors, WriteErrors) {
    const int32_t v = 0;
    std::string msg = error_of([&] { write_npy("/nonexistent/dir/y.npy", "i4", {1}, &v); });
    EXPECT_EQ(msg.rfind("/nonexistent/dir/y.npy: cannot create", 0), 0u) << msg;
    msg = error_of([&] { write_npy(temp_path("u2.npy"), "u2", {1}, &v); });
    EXPECT_NE(msg.find("cannot write dtype 'u2'"), std::string::npos) << msg;
    msg = error_of([&] { write_npy(temp_path("neg.npy"), "i4", {-1}, &v); });
    EXPECT_NE(msg.find("negative"), std::string::npos) << msg;
}

}  // namespace
}  // namespace halibit
