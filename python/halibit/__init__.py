"""halibit from Python: the runtime (Model, Session, Error) and the toolkit (model files, dyadic
requantization, the integer simulator, synthetic ResNets, training).

    import numpy as np, halibit
    model = halibit.Model("models/fashion-w2a2.halibit")
    session = halibit.Session(model, threads=1)
    logits = session.run(images)            # uint8 [N, 28, 28, 1] -> int32 [N, 10]
    print(model.labels[int(np.argmax(logits[0]))])

Model, Session and Error come from the compiled module halibit._runtime (python/CMakeLists.txt),
built into build/python/halibit/: with PYTHONPATH=python:build/python (or after cmake
--install) both parts import as this one package. The toolkit needs numpy only; see
python/README.md.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # build/python/halibit holds _runtime

from .dyadic import dyadic, dyadic_per_channel, requant_params, round_shift  # noqa: E402
from .modelfile import ModelError, read_model, validate, write_model  # noqa: E402
from .simulator import SimulationError, run  # noqa: E402

_RUNTIME = ("Model", "Session", "Error", "model_input")


def __getattr__(name):
    if name in _RUNTIME:
        try:
            from . import _runtime
        except ImportError as e:
            raise ImportError(f"halibit.{name} needs the compiled runtime module halibit._runtime ({e}): build with "
                              "scripts/build.sh and add build/python to PYTHONPATH, or cmake --install") from None
        return getattr(_runtime, name)
    raise AttributeError(f"module 'halibit' has no attribute {name!r}")


__all__ = ["Model", "Session", "Error", "model_input", "dyadic", "dyadic_per_channel", "requant_params", "round_shift", "ModelError",
           "read_model", "validate", "write_model", "SimulationError", "run"]
