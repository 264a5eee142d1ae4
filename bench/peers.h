// Peer int8 convolution engines (oneDNN, XNNPACK) that the benchmarks compare
// our kernels against. Each peer does all creation / weight packing / setup in
// its constructor, so run() measures only the forward pass.
//
// Link: -ldnnl -lXNNPACK -lpthreadpool, plus OpenMP (-fopenmp, i.e. libgomp):
// Debian's oneDNN uses the OpenMP runtime and we call omp_set_num_threads().
// Debian packages: libdnnl-dev, libxnnpack-dev, libpthreadpool-dev.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace halibit::bench {

// Batch 1, NHWC, square kernel, groups 1.
struct ConvShape {
  int height, width, in_channels, out_channels, kernel, stride, pad;
};

// (in + 2*pad - kernel)/stride + 1
int conv_out_size(int in, int kernel, int stride, int pad);

// oneDNN int8 convolution: u8 activations (NHWC) x s8 weights (OHWI) -> u8
// output (NHWC). Requantization: out = sat_u8(round(acc * output_scale())),
// zero points 0; the u8 destination acts as the ReLU clamp. The scale goes in
// through oneDNN's per-output-channel path (all channels share one value).
class OneDnnConvU8S8 {
 public:
  // threads: 1 or 2 (applied with omp_set_num_threads in the ctor and run()).
  OneDnnConvU8S8(const ConvShape& shape, int threads);
  ~OneDnnConvU8S8();
  void run();               // one forward pass
  const char* isa() const;  // oneDNN's impl_info_str, e.g. "brgconv:avx512_core_vnni"
  std::vector<uint8_t>& input();    // NHWC
  std::vector<int8_t>& weights();   // OHWI
  const std::vector<uint8_t>& output() const;  // NHWC, from the last run()
  void reload();            // re-upload input/weights after the caller changed them
  float output_scale() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// XNNPACK qs8 convolution: s8 activations (NHWC) x s8 weights (OHWI) -> s8
// output (NHWC). Requantization: out = sat_s8(round(acc * output_scale())),
// zero points 0, no bias, full [-128, 127] output range.
class XnnpackConvQS8 {
 public:
  // threads: 1 (no pool) or 2 (a pthreadpool with 2 threads).
  XnnpackConvQS8(const ConvShape& shape, int threads);
  ~XnnpackConvQS8();
  void run();
  std::vector<int8_t>& input();     // NHWC
  std::vector<int8_t>& weights();   // OHWI
  const std::vector<int8_t>& output() const;  // NHWC
  void reload();  // re-creates the operator (XNNPACK packs weights at creation)
  float output_scale() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace halibit::bench
