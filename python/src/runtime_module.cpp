// halibit._runtime: the C++ runtime from Python (pybind11). halibit/__init__.py re-exports
// Model, Session and Error; python/README.md shows their use.
//
// Model is immutable and shared (one std::shared_ptr<const halibit::Model>); a Session is one
// halibit::Session behind a mutex, so a Session used from two Python threads runs one batch at a
// time, and sessions of their own run in parallel: the GIL is released while kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "halibit/error.h"
#include "halibit/image.h"
#include "halibit/session.h"

namespace py = pybind11;

namespace {

struct PyModel {
    std::shared_ptr<const halibit::Model> model;
};

py::dict layer_info(const halibit::Model& m, const halibit::Layer& l) {
    py::dict d;
    d["name"] = l.name;
    d["op"] = halibit::op_name(l.op);
    d["inputs"] = l.inputs;
    d["output"] = l.output;
    d["macs"] = m.macs(l);
    if (l.op == halibit::Op::conv || l.op == halibit::Op::max_pool) {
        d["kernel"] = py::make_tuple(l.kernel_h, l.kernel_w);
        d["stride"] = l.stride;
        d["pad"] = l.pad;
    }
    if (l.op == halibit::Op::conv) {
        d["groups"] = l.groups;
        d["encoding"] = halibit::encoding_name(l.encoding);
        d["weight_bits"] = l.weight_bits;
        if (l.encoding == halibit::WeightEncoding::codebook) d["levels"] = l.levels;
        if (!l.int32_bias.empty()) d["bias"] = l.int32_bias;
        size_t bytes = 0;
        for (const std::string* t : {&l.weights, &l.multiplier, &l.bias, &l.int32_bias})
            if (!t->empty()) bytes += m.stored(*t).bytes;
        d["stored_bytes"] = bytes;
    }
    if (l.op == halibit::Op::channel_shuffle) d["groups"] = l.shuffle_groups;
    return d;
}

py::dict model_info(const halibit::Model& m) {
    py::dict d;
    d["name"] = m.name();
    d["file"] = m.file();
    d["file_bytes"] = m.file_bytes();
    d["format_version"] = m.format_version();
    const halibit::TensorSpec& in = m.input();
    d["input_shape"] = py::make_tuple(in.h, in.w, in.c);
    d["color"] = m.color();
    d["mean"] = m.mean();
    d["std"] = m.std();
    d["classes"] = m.output().c;
    d["labels"] = m.labels();
    d["output_scale"] = m.output_scale();
    d["macs"] = m.macs();
    py::list layers;
    for (const halibit::Layer& l : m.layers()) layers.append(layer_info(m, l));
    d["layers"] = layers;
    return d;
}

class PySession {
public:
    PySession(const PyModel& model, int threads, const std::string& isa, const std::string& kernels) {
        halibit::SessionOptions o;
        if (threads < 1) throw halibit::Error("threads must be at least 1, not " + std::to_string(threads));
        o.threads = threads;
        o.isa = halibit::parse_isa(isa);
        o.kernels = halibit::parse_kernel_choice(kernels);
        model_ = model.model;
        session_ = std::make_unique<halibit::Session>(model_, o);
    }

    // images: uint8, [N, H, W, C] or one [H, W, C] image; the logits [N, classes] or [classes].
    py::array_t<int32_t> run(const py::array& images) {
        if (!py::isinstance<py::array_t<uint8_t>>(images) || images.dtype().kind() != 'u' || images.itemsize() != 1)
            throw py::type_error("Session.run: images must be a uint8 array, not " + std::string(py::str(images.dtype())) +
                                 " (convert explicitly: halibit does not rescale pixel values)");
        const halibit::TensorSpec& in = model_->input();
        const bool one = images.ndim() == 3;
        if (images.ndim() != 3 && images.ndim() != 4)
            throw halibit::Error("Session.run: images must be [N, H, W, C] or one [H, W, C] image, not " +
                                 std::to_string(images.ndim()) + "-dimensional");
        const py::ssize_t n = one ? 1 : images.shape(0);
        const py::ssize_t* hwc = images.shape() + (one ? 0 : 1);
        if (hwc[0] != in.h || hwc[1] != in.w || hwc[2] != in.c)
            throw halibit::Error("Session.run: images are " + std::to_string(hwc[0]) + "x" + std::to_string(hwc[1]) + "x" +
                                 std::to_string(hwc[2]) + ", the model '" + model_->name() + "' takes " +
                                 std::to_string(in.h) + "x" + std::to_string(in.w) + "x" + std::to_string(in.c));
        if (n < 1) throw halibit::Error("Session.run: no images");
        if (n > (1 << 20)) throw halibit::Error("Session.run: " + std::to_string(n) + " images in one call (at most 2^20)");
        // C-contiguous (a copy only for strided views), kept alive while the kernels read it.
        py::array_t<uint8_t, py::array::c_style> contiguous = py::array_t<uint8_t, py::array::c_style>::ensure(images);
        auto out = std::make_unique<std::vector<int32_t>>();
        {
            py::gil_scoped_release unlocked;
            std::lock_guard<std::mutex> lock(mutex_);
            *out = session_->run(contiguous.data(), int(n));
        }
        const py::ssize_t classes = model_->output().c;
        int32_t* data = out->data();
        py::capsule owner(out.release(), [](void* p) { delete static_cast<std::vector<int32_t>*>(p); });
        if (one) return py::array_t<int32_t>({classes}, {py::ssize_t(4)}, data, owner);
        return py::array_t<int32_t>({n, classes}, {classes * 4, py::ssize_t(4)}, data, owner);
    }

    py::list profile() {
        std::lock_guard<std::mutex> lock(mutex_);
        py::list rows;
        for (const halibit::LayerProfile& p : session_->profile()) {
            py::dict d;
            d["name"] = p.name;
            d["op"] = p.op;
            d["kernel"] = p.kernel;
            d["implementation"] = p.implementation;
            d["seconds"] = p.seconds;
            d["macs"] = p.macs;
            rows.append(d);
        }
        return rows;
    }

    std::vector<std::string> kernel_notes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return session_->kernel_notes();
    }

    PyModel model() const { return {model_}; }
    const halibit::SessionOptions& options() const { return session_->options(); }
    size_t arena_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return session_->arena_bytes();
    }
    size_t weight_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return session_->weight_bytes();
    }

private:
    std::shared_ptr<const halibit::Model> model_;
    std::unique_ptr<halibit::Session> session_;
    std::mutex mutex_;
};

// JPEG or PNG bytes -> the model's uint8 input [H, W, C], as `halibit classify` makes it.
py::array_t<uint8_t> model_input(const py::bytes& data, const PyModel& model, const std::string& name) {
    const std::string_view view = data;
    std::vector<uint8_t> x;
    {
        py::gil_scoped_release unlocked;
        const halibit::Image image = halibit::decode_image(reinterpret_cast<const uint8_t*>(view.data()), view.size(), name);
        const halibit::TensorSpec& in = model.model->input();
        x = halibit::to_model_input(image, in.h, in.w, model.model->color());
    }
    const halibit::TensorSpec& in = model.model->input();
    py::array_t<uint8_t> out({in.h, in.w, in.c});
    std::copy(x.begin(), x.end(), out.mutable_data());
    return out;
}

}  // namespace

PYBIND11_MODULE(_runtime, m) {
    m.doc() = "halibit's C++ runtime: Model (a loaded model file) and Session (runs it)";
    static py::exception<halibit::Error> error(m, "Error", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const halibit::Error& e) {
            PyErr_SetString(error.ptr(), e.what());
        }
    });

    py::class_<PyModel>(m, "Model", "A loaded, validated model file; immutable, shared by any number of sessions.")
        .def(py::init([](const std::string& path) {
                 std::shared_ptr<const halibit::Model> model;
                 {
                     py::gil_scoped_release unlocked;
                     model = halibit::Model::load(path);
                 }
                 return PyModel{model};
             }),
             py::arg("path"))
        .def_static(
            "from_bytes",
            [](const py::bytes& data, const std::string& name) {
                std::string bytes = data;
                std::shared_ptr<const halibit::Model> model;
                {
                    py::gil_scoped_release unlocked;
                    model = halibit::Model::from_bytes(std::vector<uint8_t>(bytes.begin(), bytes.end()), name);
                }
                return PyModel{model};
            },
            py::arg("data"), py::arg("name") = "model",
            "A model from the bytes of a model file; `name` stands for the file in error messages")
        .def_property_readonly("name", [](const PyModel& p) { return p.model->name(); })
        .def_property_readonly("file", [](const PyModel& p) { return p.model->file(); })
        .def_property_readonly("input_shape", [](const PyModel& p) {
            const halibit::TensorSpec& in = p.model->input();
            return py::make_tuple(in.h, in.w, in.c);
        })
        .def_property_readonly("classes", [](const PyModel& p) { return p.model->output().c; })
        .def_property_readonly("labels", [](const PyModel& p) { return p.model->labels(); })
        .def_property_readonly("output_scale", [](const PyModel& p) { return p.model->output_scale(); })
        .def("info", [](const PyModel& p) { return model_info(*p.model); },
             "The model file's contents as a dict: name, file, file_bytes, format_version, input_shape, color, "
             "mean, std, classes, labels, output_scale, macs, and one dict per layer")
        .def("__repr__", [](const PyModel& p) {
            return "<halibit.Model '" + p.model->name() + "' from " + p.model->file() + ">";
        });

    m.def("model_input", &model_input, py::arg("data"), py::arg("model"), py::arg("name") = "image",
          "JPEG or PNG bytes -> the model's uint8 input [H, W, C] (colour converted, resized by area averaging), "
          "as `halibit classify` makes it; `name` stands for the file in error messages");

    py::class_<PySession>(m, "Session", "Runs a Model; one batch at a time per session, sessions in parallel.")
        .def(py::init<const PyModel&, int, const std::string&, const std::string&>(), py::arg("model"),
             py::arg("threads") = 1, py::arg("isa") = "auto", py::arg("kernels") = "auto")
        .def("run", &PySession::run, py::arg("images"),
             "uint8 images [N, H, W, C] (or one [H, W, C]) -> int32 logits [N, classes] (or [classes])")
        .def("profile", &PySession::profile, "Per layer of the last run: name, op, kernel, seconds, macs")
        .def("kernel_notes", &PySession::kernel_notes,
             "After a run: the convolutions that do not run the kernel family `kernels` asks for, and why")
        .def_property_readonly("model", &PySession::model)
        .def_property_readonly("threads", [](const PySession& s) { return s.options().threads; })
        .def_property_readonly("isa", [](const PySession& s) { return std::string(halibit::isa_name(s.options().isa)); })
        .def_property_readonly("kernels",
                               [](const PySession& s) { return std::string(halibit::kernel_choice_name(s.options().kernels)); })
        .def_property_readonly("arena_bytes", &PySession::arena_bytes)
        .def_property_readonly("weight_bytes", &PySession::weight_bytes);
}
