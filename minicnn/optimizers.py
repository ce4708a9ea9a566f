"""Optimisers: how a gradient becomes a step.

An optimiser receives (name, parameter, gradient) triples and updates each
parameter *in place*, so layers, checkpoints and users all keep seeing the same
arrays. Per-parameter state (momentum, Adam's moments) is kept under the same
name, which is how a checkpoint saves it and a resumed run finds it again.

SGD, Adam and RMSprop are here, in Keras's forms and with Keras's defaults; their textbook
twins are in :mod:`minicnn.plain.optimizers`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from minicnn import backend, checks, parallel

Parameter = tuple[str, Any, Any]  # (name such as "conv2d/kernel", value, gradient)
"""(name, value, gradient), e.g. ("conv2d/kernel", array, array): what :meth:`Optimizer.step` receives."""


class Optimizer:
    """Base class: the step counter and the per-parameter state (slots).

    Parameters
    ----------
    learning_rate : float
        The step size; must be > 0.

    Attributes
    ----------
    iterations : int
        Steps taken so far (t in Adam's bias correction).
    slots : dict of str to ndarray
        Per-parameter state, keyed "kind/parameter name", e.g. "m/conv2d/kernel".

    Raises
    ------
    ValueError
        ``learning_rate`` is not > 0.
    """

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = checks.check_number(
            type(self).__name__, "learning_rate", learning_rate, 0, include_low=False
        )
        self.iterations = 0
        self.slots: dict[str, Any] = {}  # "m/conv2d/kernel" -> array, zeros until first use

    def slot(self, kind: str, name: str, like: Any) -> Any:
        """The state array ``kind`` ("m", "v", "velocity") of parameter ``name``, created as zeros."""
        key = f"{kind}/{name}"
        if key not in self.slots:
            self.slots[key] = backend.array_module().zeros_like(like)
        return self.slots[key]

    def step(self, parameters: Iterable[Parameter]) -> None:
        """Apply one update to every parameter, in place.

        Parameters
        ----------
        parameters : iterable of (str, ndarray, ndarray)
            (name, value, gradient) triples, as ``Sequential.parameters()`` returns them.
        """
        self.iterations += 1
        for name, value, gradient in parameters:
            if gradient is None:  # a non-trainable weight (BatchNormalization's moving statistics): left alone
                continue
            self.update(name, value, gradient)

    def update(self, name: str, value: Any, gradient: Any) -> None:
        """Update one parameter ``value`` in place from its ``gradient``; ``name`` finds its slots."""
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        """Host copies of the step counter and every slot (for checkpoints)."""
        state = {key: backend.to_numpy(array) for key, array in self.slots.items()}
        state["iterations"] = self.iterations
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned, copying the slots to the active backend."""
        self.iterations = int(state["iterations"])
        self.slots = {key: backend.to_device(value) for key, value in state.items() if key != "iterations"}

    def get_config(self) -> dict[str, Any]:
        """The class name and hyperparameters as JSON-able data (:func:`from_config` rebuilds the optimiser)."""
        return {"class_name": type(self).__name__, "learning_rate": self.learning_rate}


class SGD(Optimizer):
    """Stochastic gradient descent with (Keras-style) momentum.

        velocity = momentum * velocity - learning_rate * g
        w        = w + velocity          (plain SGD when momentum = 0: w -= learning_rate * g)

    Parameters
    ----------
    learning_rate : float, default 0.01
        The step size.
    momentum : float, default 0.0
        In [0, 1); 0 is plain SGD.

    Raises
    ------
    ValueError
        ``learning_rate`` is not > 0, or ``momentum`` is outside [0, 1).
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0) -> None:
        super().__init__(learning_rate)
        self.momentum = checks.check_number("SGD", "momentum", momentum, 0, 1, include_high=False)

    def update(self, name: str, value: Any, gradient: Any) -> None:
        """w -= learning_rate * g, or the momentum update above, in place.

        The same numbers as :func:`minicnn.plain.optimizers.sgd` (bit for bit), computed in place, the velocity kept
        in ``self.slots``.
        """
        if self.momentum == 0.0:
            value -= self.learning_rate * gradient
            return
        velocity = self.slot("velocity", name, value)
        velocity *= self.momentum
        velocity -= self.learning_rate * gradient
        value += velocity

    def get_config(self) -> dict[str, Any]:
        """learning_rate and momentum."""
        return {**super().get_config(), "momentum": self.momentum}


CACHE_BLOCK = 2**18
"""Values per block in :func:`cache_blocks` (1 MB of float32, to stay within a core's cache)."""


def cache_blocks(size: int) -> list[slice]:
    """Consecutive slices that cover ``range(size)``: CACHE_BLOCK values each on the CPU, one slice on a GPU.

    Why blocks (per-backend tuning of Adam): its formulas take ten passes over the arrays. Over a
    whole 67 MB kernel each pass goes to memory and back; over one block (1 MB per array) all ten
    run while it is still in the core's cache, 1.5x faster for the study's model. Elementwise, so
    the numbers are the same for any block size. A GPU gets one block: it has no such cache to
    fit, and every block would cost it ten more kernel launches.
    """
    block_size = CACHE_BLOCK if backend.backend_name() == "numpy" else max(size, 1)
    return [slice(start, start + block_size) for start in range(0, size, block_size)]


class Adam(Optimizer):
    """Adam (Kingma & Ba), in the form Keras uses, with Keras's defaults.

        m = beta_1 * m + (1 - beta_1) * g           running mean of gradients
        v = beta_2 * v + (1 - beta_2) * g**2        running mean of squared gradients
        step_size = learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t)   (bias correction)
        w = w - step_size * m / (sqrt(v) + epsilon)

    Parameters
    ----------
    learning_rate : float, default 0.001
        The step size (the study uses 1e-4).
    beta_1 : float, default 0.9
        Decay of the running mean of gradients.
    beta_2 : float, default 0.999
        Decay of the running mean of squared gradients.
    epsilon : float, default 1e-7
        Added to sqrt(v), after the bias correction has gone into the step size (as Keras
        does; the paper adds it to the corrected sqrt(v)).

    Raises
    ------
    TypeError
        An argument that is not a number.
    ValueError
        ``learning_rate`` is not > 0, ``epsilon`` is negative, or ``beta_1`` or ``beta_2`` is outside [0, 1).
    """

    def __init__(
        self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7
    ) -> None:
        super().__init__(learning_rate)
        self.beta_1 = checks.check_number("Adam", "beta_1", beta_1, 0, 1, include_high=False)
        self.beta_2 = checks.check_number("Adam", "beta_2", beta_2, 0, 1, include_high=False)
        self.epsilon = checks.check_number("Adam", "epsilon", epsilon, 0)

    def update(self, name: str, value: Any, gradient: Any) -> None:
        """The Adam update above for one parameter, in place.

        The same numbers as :func:`minicnn.plain.optimizers.adam` (bit for bit), computed with these tricks: in place
        with two temporaries (:meth:`update_block`), in cache-sized blocks (:func:`cache_blocks`), the blocks
        split over the threads of :mod:`minicnn.parallel`.
        """
        t = self.iterations
        m = self.slot("m", name, value)
        v = self.slot("v", name, value)
        step_size = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        # reshape(-1) is a view of a contiguous array; of any other it would be a copy, lost after the update.
        if not value.flags.c_contiguous:
            raise ValueError(f"Adam: parameter {name!r} is not a contiguous array, so it cannot be updated in place")
        flat = [array.reshape(-1) for array in (value, gradient, m, v)]
        blocks = cache_blocks(value.size)

        def update_blocks(part: slice) -> None:  # one thread's blocks
            for block in blocks[part]:
                self.update_block(step_size, *(array[block] for array in flat))

        # The plain statement: self.update_block(step_size, *flat), the whole arrays at once. Split in
        # cache-sized blocks, and the blocks over the threads (elementwise: the same numbers for any split).
        parallel.over_batch(update_blocks, len(blocks))

    def update_block(self, step_size: float, value: Any, gradient: Any, m: Any, v: Any) -> None:
        """The Adam formulas above on one block of a flattened parameter, in place, with two temporaries.

        Each line is one step of :func:`minicnn.plain.optimizers.adam`, in the same order, so the
        numbers are the same bit for bit.
        """
        xp = backend.array_module()
        m *= self.beta_1
        m += (1 - self.beta_1) * gradient  # m = beta_1*m + (1-beta_1)*g
        squared = xp.square(gradient)
        squared *= 1 - self.beta_2
        v *= self.beta_2
        v += squared  # v = beta_2*v + (1-beta_2)*g**2
        update = xp.sqrt(v, out=squared)  # reuse the temporary: g**2 is no longer needed
        update += self.epsilon
        xp.divide(m, update, out=update)  # m / (sqrt(v) + epsilon)
        update *= step_size
        value -= update  # w = w - step_size * m / (sqrt(v) + epsilon)

    def get_config(self) -> dict[str, Any]:
        """learning_rate, beta_1, beta_2 and epsilon."""
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), in the form Keras 3 uses, with Keras's defaults.

        v = rho * v + (1 - rho) * g**2                 running mean of squared gradients
        w = w - learning_rate * g / sqrt(v + epsilon)  (epsilon inside the square root, as in Keras)

    With ``centered=True`` the running mean of the gradients, a = rho * a + (1 - rho) * g, is
    also kept and sqrt(v - a**2 + epsilon) (an estimate of the variance) is used instead; with
    ``momentum`` > 0 the step goes through a velocity, s = momentum * s + step, w = w - s.

    Parameters
    ----------
    learning_rate : float, default 0.001
        The step size.
    rho : float, default 0.9
        Decay of the running means, in [0, 1).
    momentum : float, default 0.0
        In [0, 1); 0 takes each step directly.
    epsilon : float, default 1e-7
        Added to v under the square root (not to sqrt(v) as in Adam), so a tiny gradient
        takes a step of at most learning_rate * g / sqrt(epsilon).
    centered : bool, default False
        Divide by the estimated standard deviation of the gradient instead of its root mean square.

    Raises
    ------
    TypeError
        An argument that is not a number (``centered``: not a bool).
    ValueError
        ``learning_rate`` is not > 0, ``epsilon`` is negative, or ``rho`` or ``momentum`` is outside [0, 1).
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.rho = checks.check_number("RMSprop", "rho", rho, 0, 1, include_high=False)
        self.momentum = checks.check_number("RMSprop", "momentum", momentum, 0, 1, include_high=False)
        self.epsilon = checks.check_number("RMSprop", "epsilon", epsilon, 0)
        self.centered = checks.check_bool("RMSprop", "centered", centered)

    def update(self, name: str, value: Any, gradient: Any) -> None:
        """The RMSprop update above for one parameter, in place (the running means kept in ``self.slots``).

        The same numbers as :func:`minicnn.plain.optimizers.rmsprop` (bit for bit), computed in place.
        """
        xp = backend.array_module()
        velocity = self.slot("velocity", name, value)
        velocity *= self.rho
        velocity += (1 - self.rho) * xp.square(gradient)  # v = rho*v + (1-rho)*g**2
        if self.centered:
            average = self.slot("average_gradient", name, value)
            average *= self.rho
            average += (1 - self.rho) * gradient  # a = rho*a + (1-rho)*g
            denominator = velocity - xp.square(average) + self.epsilon
        else:
            denominator = velocity + self.epsilon
        step = self.learning_rate * gradient / xp.sqrt(denominator)  # lr * g / sqrt(v + epsilon)
        if self.momentum > 0:
            velocity_of_steps = self.slot("momentum", name, value)
            velocity_of_steps *= self.momentum
            velocity_of_steps += step  # s = momentum*s + step
            step = velocity_of_steps
        value -= step

    def get_config(self) -> dict[str, Any]:
        """learning_rate, rho, momentum, epsilon and centered."""
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


OPTIMIZERS = {"adam": Adam, "sgd": SGD, "rmsprop": RMSprop, "Adam": Adam, "SGD": SGD, "RMSprop": RMSprop}


def get(optimizer: str | Optimizer) -> Optimizer:
    """An optimiser from a name or the object itself.

    Parameters
    ----------
    optimizer : str or Optimizer
        "adam", "sgd" or "rmsprop" (also "Adam", "SGD", "RMSprop") for a new optimiser with the default settings;
        an object is returned as it is.

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        An unknown name.
    """
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of adam, sgd, rmsprop")
        return OPTIMIZERS[optimizer]()
    return optimizer


def from_config(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimiser from :meth:`Optimizer.get_config` (used when loading a checkpoint)."""
    config = dict(config)
    class_name = config.pop("class_name")
    if class_name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer class {class_name!r} in saved config")
    return OPTIMIZERS[class_name](**config)
