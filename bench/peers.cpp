#include "peers.h"

#include <omp.h>
#include <pthreadpool.h>
#include <xnnpack.h>

#include <cmath>
#include <dnnl.hpp>
#include <stdexcept>
#include <string>

namespace halibit::bench {

int conv_out_size(int in, int kernel, int stride, int pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

namespace {

// Deterministic pseudo-random bytes (xorshift32) so every run benchmarks and
// checks the same data.
template <typename T>
void fill_random(std::vector<T>& v, uint32_t seed, int lo, int hi) {
  uint32_t s = seed;
  for (auto& x : v) {
    s ^= s << 13; s ^= s >> 17; s ^= s << 5;
    x = static_cast<T>(lo + static_cast<int>(s % uint32_t(hi - lo + 1)));
  }
}

// Requantization scale so outputs spread over tens of codes instead of
// saturating: the int32 accumulator's RMS is sqrt(K) * RMS(x*w), K =
// kernel*kernel*in_channels, with RMS(x*w) ~ 147*73 for uniform u8 x s8 and
// ~ 74*73 for s8 x s8. So outputs have RMS ~ 84 (oneDNN) / ~ 42 (XNNPACK).
float default_scale(const ConvShape& s) {
  return 1.0f / (128.0f * std::sqrt(float(s.kernel * s.kernel * s.in_channels)));
}

size_t in_size(const ConvShape& s) { return size_t(s.height) * s.width * s.in_channels; }
size_t w_size(const ConvShape& s) {
  return size_t(s.out_channels) * s.kernel * s.kernel * s.in_channels;
}
size_t out_size(const ConvShape& s) {
  return size_t(conv_out_size(s.height, s.kernel, s.stride, s.pad)) *
         conv_out_size(s.width, s.kernel, s.stride, s.pad) * s.out_channels;
}

}  // namespace

// ---------------------------------------------------------------- oneDNN ---

struct OneDnnConvU8S8::Impl {
  int threads;
  float scale;
  std::vector<uint8_t> in, out;
  std::vector<int8_t> w;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  dnnl::memory src, wei_user, wei, dst;  // wei: in the layout the primitive chose
  std::string impl_name;
};

OneDnnConvU8S8::OneDnnConvU8S8(const ConvShape& s, int threads) : impl_(new Impl) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  Impl& m = *impl_;
  m.threads = threads;
  m.scale = default_scale(s);
  m.in.resize(in_size(s));
  m.w.resize(w_size(s));
  m.out.resize(out_size(s));
  fill_random(m.in, 1, 0, 255);
  fill_random(m.w, 2, -127, 127);

  // Debian's libdnnl is built with DNNL_CPU_RUNTIME=OMP: it has no threadpool
  // interface, and primitives use omp_get_max_threads() both when created
  // (work partitioning) and when executed. The setting is per calling
  // thread, so run() sets it again.
  omp_set_num_threads(threads);

  const int oh = conv_out_size(s.height, s.kernel, s.stride, s.pad);
  const int ow = conv_out_size(s.width, s.kernel, s.stride, s.pad);
  // oneDNN dims are always in NCHW / OIHW order; the tag gives the layout.
  memory::dims src_dims = {1, s.in_channels, s.height, s.width};
  memory::dims wei_dims = {s.out_channels, s.in_channels, s.kernel, s.kernel};
  memory::dims dst_dims = {1, s.out_channels, oh, ow};
  memory::desc src_md(src_dims, dt::u8, tag::nhwc);
  memory::desc wei_any(wei_dims, dt::s8, tag::any);  // let oneDNN pick the packed layout
  memory::desc dst_md(dst_dims, dt::u8, tag::nhwc);

  convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct,
                              src_md, wei_any, dst_md, {s.stride, s.stride},
                              {s.pad, s.pad}, {s.pad, s.pad});
  primitive_attr attr;
  // mask 1<<1: one scale per output channel (dst dim 1), the realistic
  // per-channel requantization path; all equal so the check has one scale.
  attr.set_output_scales(1 << 1, std::vector<float>(s.out_channels, m.scale));
  m.pd = convolution_forward::primitive_desc(d, attr, m.eng);
  m.conv = convolution_forward(m.pd);
  m.impl_name = m.pd.impl_info_str();

  // src/dst wrap our vectors directly (no copies per run).
  m.src = memory(m.pd.src_desc(), m.eng, m.in.data());
  m.dst = memory(m.pd.dst_desc(), m.eng, m.out.data());
  m.wei_user = memory({wei_dims, dt::s8, tag::ohwi}, m.eng, m.w.data());
  m.wei = memory(m.pd.weights_desc(), m.eng);
  reload();
}

OneDnnConvU8S8::~OneDnnConvU8S8() = default;

void OneDnnConvU8S8::reload() {
  Impl& m = *impl_;
  omp_set_num_threads(m.threads);
  m.src.set_data_handle(m.in.data());  // in case the caller reallocated
  m.wei_user.set_data_handle(m.w.data());
  dnnl::reorder(m.wei_user, m.wei).execute(m.strm, m.wei_user, m.wei);
  m.strm.wait();
}

void OneDnnConvU8S8::run() {
  Impl& m = *impl_;
  omp_set_num_threads(m.threads);  // cheap: sets this thread's ICV
  m.conv.execute(m.strm, {{DNNL_ARG_SRC, m.src}, {DNNL_ARG_WEIGHTS, m.wei},
                          {DNNL_ARG_DST, m.dst}});
  m.strm.wait();
}

const char* OneDnnConvU8S8::isa() const { return impl_->impl_name.c_str(); }
std::vector<uint8_t>& OneDnnConvU8S8::input() { return impl_->in; }
std::vector<int8_t>& OneDnnConvU8S8::weights() { return impl_->w; }
const std::vector<uint8_t>& OneDnnConvU8S8::output() const { return impl_->out; }
float OneDnnConvU8S8::output_scale() const { return impl_->scale; }

// --------------------------------------------------------------- XNNPACK ---

struct XnnpackConvQS8::Impl {
  ConvShape shape;
  float scale;
  std::vector<int8_t> in, w, out;
  pthreadpool_t pool = nullptr;  // nullptr = run on the calling thread
  xnn_operator_t op = nullptr;
};

namespace {
void xnn_check(xnn_status st, const char* what) {
  if (st != xnn_status_success)
    throw std::runtime_error(std::string("XNNPACK ") + what + " failed: " +
                             std::to_string(int(st)));
}
}  // namespace

XnnpackConvQS8::XnnpackConvQS8(const ConvShape& s, int threads) : impl_(new Impl) {
  Impl& m = *impl_;
  m.shape = s;
  m.scale = default_scale(s);
  m.in.resize(in_size(s));
  m.w.resize(w_size(s));
  m.out.resize(out_size(s));
  fill_random(m.in, 3, -128, 127);
  fill_random(m.w, 4, -127, 127);
  // xnn_initialize is reference counted and idempotent; never deinitialized here.
  xnn_check(xnn_initialize(nullptr), "initialize");
  if (threads > 1) m.pool = pthreadpool_create(threads);
  reload();
}

XnnpackConvQS8::~XnnpackConvQS8() {
  if (impl_->op) xnn_delete_operator(impl_->op);
  if (impl_->pool) pthreadpool_destroy(impl_->pool);
}

void XnnpackConvQS8::reload() {
  Impl& m = *impl_;
  const ConvShape& s = m.shape;
  // XNNPACK kernels may read up to XNN_EXTRA_BYTES past the end of the input.
  m.in.reserve(m.in.size() + XNN_EXTRA_BYTES);
  // Weights are packed at creation, so a weight change needs a new operator.
  if (m.op) xnn_delete_operator(m.op);
  m.op = nullptr;
  // Requant scale = input_scale * kernel_scale / output_scale; putting it all
  // in kernel_scale makes it bit-identical to output_scale().
  xnn_check(xnn_create_convolution2d_nhwc_qs8(
                s.pad, s.pad, s.pad, s.pad, s.kernel, s.kernel, s.stride, s.stride,
                /*dilation*/ 1, 1, /*groups*/ 1, s.in_channels, s.out_channels,
                /*input_channel_stride*/ s.in_channels, /*output_channel_stride*/ s.out_channels,
                /*input_zero_point*/ 0, /*input_scale*/ 1.0f, /*kernel_scale*/ m.scale,
                m.w.data(), /*bias*/ nullptr, /*output_zero_point*/ 0,
                /*output_scale*/ 1.0f, -128, 127, /*flags*/ 0, &m.op),
            "create_convolution2d_nhwc_qs8");
  xnn_check(xnn_setup_convolution2d_nhwc_qs8(m.op, 1, s.height, s.width, m.in.data(),
                                             m.out.data(), m.pool),
            "setup_convolution2d_nhwc_qs8");
}

void XnnpackConvQS8::run() { xnn_check(xnn_run_operator(impl_->op, impl_->pool), "run"); }

std::vector<int8_t>& XnnpackConvQS8::input() { return impl_->in; }
std::vector<int8_t>& XnnpackConvQS8::weights() { return impl_->w; }
const std::vector<int8_t>& XnnpackConvQS8::output() const { return impl_->out; }
float XnnpackConvQS8::output_scale() const { return impl_->scale; }

}  // namespace halibit::bench
