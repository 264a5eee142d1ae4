// g++ -O2 -std=c++17 -fopenmp bench/peers_check.cpp bench/peers.cpp -o /tmp/peers_check -ldnnl -lXNNPACK -lpthreadpool
//
// Checks both peer engines against a plain int32 reference convolution with the
// same requantization (+-1 allowed for float rounding differences), at 1 and 2
// threads, then prints a rough single-thread timing of a ResNet-18 layer.
// Exit status is non-zero if any check fails.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "peers.h"

using namespace halibit::bench;

// Reference: NHWC input, OHWI weights, zero padding, out = clamp(round(acc * scale)).
template <typename In, typename Out>
std::vector<Out> reference(const ConvShape& s, const std::vector<In>& in,
                           const std::vector<int8_t>& w, float scale, int lo, int hi) {
  const int oh = conv_out_size(s.height, s.kernel, s.stride, s.pad);
  const int ow = conv_out_size(s.width, s.kernel, s.stride, s.pad);
  const int C = s.in_channels, K = s.kernel;
  std::vector<Out> out(size_t(oh) * ow * s.out_channels);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      for (int o = 0; o < s.out_channels; ++o) {
        int32_t acc = 0;
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            const int iy = y * s.stride - s.pad + ky, ix = x * s.stride - s.pad + kx;
            if (iy < 0 || iy >= s.height || ix < 0 || ix >= s.width) continue;
            const In* a = &in[(size_t(iy) * s.width + ix) * C];
            const int8_t* b = &w[((size_t(o) * K + ky) * K + kx) * C];
            for (int c = 0; c < C; ++c) acc += int32_t(a[c]) * int32_t(b[c]);
          }
        const float q = std::nearbyint(float(acc) * scale);
        out[(size_t(y) * ow + x) * s.out_channels + o] = Out(std::clamp(q, float(lo), float(hi)));
      }
  return out;
}

// Runs one peer and compares; prints max |diff| and the share of outputs at the
// low / high clamp limits (for oneDNN u8 the low one is the ReLU zero). A second pass changes the data (reversed) and calls reload().
template <typename Peer>
bool check(const char* name, const ConvShape& s, int threads, int lo, int hi) {
  Peer p(s, threads);
  using In = typename std::decay_t<decltype(p.input())>::value_type;
  using Out = typename std::decay_t<decltype(p.output())>::value_type;
  int max_diff = 0;
  size_t at_lo = 0, at_hi = 0, total = 0;
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      std::reverse(p.input().begin(), p.input().end());
      std::reverse(p.weights().begin(), p.weights().end());
      p.reload();
    }
    p.run();
    const auto ref = reference<In, Out>(s, p.input(), p.weights(), p.output_scale(), lo, hi);
    if (p.output().size() != ref.size()) max_diff = 999;
    for (size_t i = 0; i < ref.size() && i < p.output().size(); ++i) {
      max_diff = std::max(max_diff, std::abs(int(p.output()[i]) - int(ref[i])));
      at_lo += ref[i] == lo;
      at_hi += ref[i] == hi;
    }
    total += ref.size();
  }
  const bool ok = max_diff <= 1;
  std::printf("%-8s %2dx%-2dx%-3d->%-3d k%d s%d p%d  t%d  max|diff|=%d  at lo/hi clamp %4.1f%%/%4.1f%%  %s\n",
              name, s.height, s.width, s.in_channels, s.out_channels, s.kernel, s.stride,
              s.pad, threads, max_diff, 100.0 * at_lo / total, 100.0 * at_hi / total, ok ? "PASS" : "FAIL");
  return ok;
}

// Best-of-5 time per run(), each sample averaging enough runs to last ~0.2 s.
template <typename Peer>
double seconds_per_run(Peer& p) {
  using clk = std::chrono::steady_clock;
  for (int i = 0; i < 5; ++i) p.run();  // warm-up
  auto t0 = clk::now();
  int n = 0;
  while (clk::now() - t0 < std::chrono::milliseconds(50)) { p.run(); ++n; }
  const int reps = std::max(1, n * 4);
  double best = 1e9;
  for (int k = 0; k < 5; ++k) {
    t0 = clk::now();
    for (int i = 0; i < reps; ++i) p.run();
    best = std::min(best, std::chrono::duration<double>(clk::now() - t0).count() / reps);
  }
  return best;
}

int main() {
  const ConvShape shapes[] = {
      {8, 8, 16, 32, 3, 1, 1},
      {9, 7, 3, 5, 3, 2, 1},
      {5, 5, 64, 64, 1, 1, 0},
      {56, 56, 64, 64, 3, 1, 1},
  };
  bool ok = true;
  for (int threads : {1, 2})
    for (const ConvShape& s : shapes) {
      ok &= check<OneDnnConvU8S8>("oneDNN", s, threads, 0, 255);
      ok &= check<XnnpackConvQS8>("XNNPACK", s, threads, -128, 127);
    }

  const ConvShape r18{56, 56, 64, 64, 3, 1, 1};
  const double macs = 56.0 * 56 * 64 * 64 * 9;
  OneDnnConvU8S8 dnnl(r18, 1);
  XnnpackConvQS8 xnn(r18, 1);
  std::printf("oneDNN implementation: %s\n", dnnl.isa());
  const double td = seconds_per_run(dnnl), tx = seconds_per_run(xnn);
  std::printf("ResNet-18 56x56x64->64 3x3 s1 p1, 1 thread:\n");
  std::printf("  oneDNN u8s8 : %8.1f us  %6.1f GMAC/s\n", td * 1e6, macs / td * 1e-9);
  std::printf("  XNNPACK qs8 : %8.1f us  %6.1f GMAC/s\n", tx * 1e6, macs / tx * 1e-9);

  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
