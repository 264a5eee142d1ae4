"""halibit toolkit: model files, dyadic requantization, the integer simulator, synthetic ResNets.

numpy only; see python/README.md.
"""
from .dyadic import dyadic, dyadic_per_channel, requant_params, round_shift
from .modelfile import ModelError, read_model, validate, write_model
from .simulator import SimulationError, run

__all__ = ["dyadic", "dyadic_per_channel", "requant_params", "round_shift", "ModelError", "read_model",
           "validate", "write_model", "SimulationError", "run"]
