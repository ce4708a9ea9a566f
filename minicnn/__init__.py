"""minicnn: a small, readable CNN framework on NumPy (CPU) and CuPy (GPU).

    import minicnn as mc
    from minicnn import layers, losses, optimizers

    model = mc.Sequential([layers.Conv2D(32, 3, activation="relu", input_shape=(300, 300, 1)), ...])
"""

from minicnn import backend, callbacks, layers, losses, optimizers
from minicnn.backend import set_backend
from minicnn.model import Sequential, TrainingDivergedError, load_model

__version__ = "0.1.0"

__all__ = ["Sequential", "TrainingDivergedError", "load_model", "set_backend", "backend", "layers", "losses", "optimizers", "callbacks"]
