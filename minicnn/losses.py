"""Losses: how wrong the model's output is, and dL/doutput to start backward from.

Each loss is a mean over the batch of one number per sample (Keras's "sum over batch size"),
optionally scaled per sample by ``sample_weight`` (N,) (class weights); the loss is a scalar.

Binary cross-entropy (``"binary_crossentropy"``): a probability p about a 0/1 label y.

    loss = mean_n  -[ y log p + (1 - y) log(1 - p) ]          y_pred, y_true (N, 1) or (N,)

Categorical cross-entropy (``"categorical_crossentropy"``): K class probabilities p about a
one-hot (or soft) label row y; the sparse form takes the class index c instead of the row.

    loss = mean_n  -sum_k y_k log p_k     = mean_n -log p_c    y_pred (N, K), y_true (N, K) or c (N,)

Mean squared error (``"mse"``): loss = mean over every entry of (y_pred - y_true)**2, y_pred
and y_true of one shape (N, ...).

As in Keras, probabilities are clipped to [1e-7, 1 - 1e-7] so log never sees 0 (categorical:
each row is first divided by its sum, then clipped). With ``from_logits=True`` the model's last
layer outputs z (no sigmoid or softmax) and the losses use stable identities:
binary  max(z, 0) - z*y + log(1 + exp(-|z|));  categorical  -sum_k y_k log_softmax(z)_k.

Why a fused gradient: for p = sigmoid(z), the chain rule through the clipped log
gives dL/dp * dp/dz, which in float32 becomes 0 * huge once p rounds to 1 and the
network can no longer learn from confident mistakes. Written out, the two factors
cancel to  dL/dz = (p - y) / N , which is exact and stable. The same holds for
p = softmax(z) into categorical cross-entropy (one row per sample, N the number of rows):
dL/dz = (p - y) / N. The model uses it whenever such an activation feeds its loss.

That decision and that gradient are made in one place, :func:`start_backward`, which
the training loop calls after the loss: it returns where backward starts, dL/dz past a
fused last activation or dL/dy otherwise. A loss takes part with two methods,
``fuses_with(activation)`` and ``gradient_before_activation()``.
"""

from __future__ import annotations

from typing import Any

from minicnn import backend, checks
from minicnn.layers.activations import Activation, Sigmoid, Softmax, log_softmax, sigmoid, softmax

EPSILON = 1e-7
"""Probabilities are clipped to [EPSILON, 1 - EPSILON] before the log (Keras's epsilon)."""


class Loss:
    """What every loss has: ``forward``, ``backward``, the fused start (none by default) and ``get_config``.

    Subclasses set ``from_logits`` (False for losses that take no logits) and write
    ``forward(y_pred, y_true, sample_weight=None)`` and ``backward()``.
    """

    from_logits = False

    def forward(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> Any:
        """The mean loss over the batch (a 0-d array); remembers what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self) -> Any:
        """dL/dy_pred of the last :meth:`forward`, of the shape of y_pred."""
        raise NotImplementedError

    def fuses_with(self, activation: Any) -> bool:
        """Whether backward may start past ``activation`` with :meth:`gradient_before_activation`: no, by default."""
        return False

    def gradient_before_activation(self) -> Any:
        """dL/dz before the fused activation (only where :meth:`fuses_with` is True)."""
        raise NotImplementedError(f"{type(self).__name__} fuses with no activation")

    def get_config(self) -> dict[str, Any]:
        """The class name and ``from_logits``, as JSON-able data (saved with a compiled model)."""
        return {"class_name": type(self).__name__, "from_logits": self.from_logits}


class BinaryCrossentropy(Loss):
    """Keras-compatible binary cross-entropy (mean over the batch).

    Parameters
    ----------
    from_logits : bool, default False
        If True, ``y_pred`` holds logits z (the model ends without a sigmoid) instead of
        probabilities p = sigmoid(z).
    """

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = checks.check_bool("BinaryCrossentropy", "from_logits", from_logits)

    def forward(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> Any:
        """The mean loss over the batch; remembers its inputs for :meth:`backward`.

        The same numbers as :func:`minicnn.plain.losses.binary_cross_entropy_forward` (or, from logits,
        :func:`minicnn.plain.losses.binary_cross_entropy_logits_forward`), bit for bit; plus sample weights.

        Parameters
        ----------
        y_pred : ndarray of shape (N, 1) or (N,)
            Probabilities p in [0, 1], or logits z when ``from_logits``.
        y_true : ndarray of the shape of y_pred
            Labels in [0, 1].
        sample_weight : ndarray of shape (N,), optional
            Scales each sample's term (class weights); the mean still divides by N.

        Returns
        -------
        ndarray of shape ()
            The loss, a 0-d array on the active backend (``float(loss)`` reads it).

        Raises
        ------
        ValueError
            ``y_pred`` and ``y_true`` have different shapes.
        """
        xp = backend.array_module()
        if y_pred.shape != y_true.shape:
            raise ValueError(f"BinaryCrossentropy: y_pred has shape {y_pred.shape} but y_true has {y_true.shape}")
        self.y_pred, self.y_true = y_pred, y_true
        self.weight = None if sample_weight is None else sample_weight.reshape(y_pred.shape)
        if self.from_logits:
            z = y_pred
            per_sample = xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))
        else:
            p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
            per_sample = -(y_true * xp.log(p) + (1 - y_true) * xp.log(1 - p))
        if self.weight is not None:
            per_sample = per_sample * self.weight
        return per_sample.mean()

    def backward(self) -> Any:
        """dL/dy_pred, the gradient with respect to whatever ``forward`` received.

        The same numbers as :func:`minicnn.plain.losses.binary_cross_entropy_backward` (or, from logits,
        :func:`minicnn.plain.losses.binary_cross_entropy_logits_backward`) with dloss = 1, bit for bit.

        Returns
        -------
        ndarray of the shape of y_pred
            For logits: (sigmoid(z) - y) / N. For probabilities: the derivative of the
            clipped log, 0 where p was clipped.
        """
        xp = backend.array_module()
        n = self.y_pred.size
        if self.from_logits:
            grad = (sigmoid(self.y_pred) - self.y_true) / n
        else:
            p, y = self.y_pred, self.y_true
            inside = (p > EPSILON) & (p < 1 - EPSILON)  # clipping is flat: no gradient outside
            safe_p = xp.clip(p, EPSILON, 1 - EPSILON)
            grad = (-(y / safe_p) + (1 - y) / (1 - safe_p)) / n * inside
        return grad if self.weight is None else grad * self.weight

    def fuses_with(self, activation: Any) -> bool:
        """True when ``activation`` is a Sigmoid and the loss reads probabilities: then dL/dz = (p - y) / N.

        With ``from_logits`` the model ends without a sigmoid, and :meth:`backward` already is dL/dz.
        """
        return isinstance(activation, Sigmoid) and not self.from_logits

    def gradient_before_activation(self) -> Any:
        """dL/dz = (p - y) / N for probabilities p = sigmoid(z): the fused, stable gradient.

        The same numbers as :func:`minicnn.plain.losses.sigmoid_binary_cross_entropy_backward` with
        dloss = 1, bit for bit. Also called ``gradient_before_sigmoid``.

        Returns
        -------
        ndarray of the shape of y_pred
            The gradient before the sigmoid, times ``sample_weight`` when one was given.
        """
        grad = (self.y_pred - self.y_true) / self.y_pred.size
        return grad if self.weight is None else grad * self.weight

    gradient_before_sigmoid = gradient_before_activation  # the name for this loss's one fused activation


def weights_per_row(where: str, sample_weight: Any, rows: int) -> Any:
    """``sample_weight`` as (N,), one weight per sample (row), or None; a wrong size is an error naming it."""
    if sample_weight is None:
        return None
    if sample_weight.size != rows:
        raise ValueError(f"{where}: sample_weight must hold one weight per sample ({rows}), got {sample_weight.shape}")
    return sample_weight.reshape(rows)


class CategoricalCrossentropy(Loss):
    """Keras-compatible categorical cross-entropy: K class probabilities against a one-hot label row.

        loss = mean_n  -sum_k y_nk log p_nk           p = y_pred / its row sum, clipped to [1e-7, 1 - 1e-7]
        from logits:   -sum_k y_nk log_softmax(z_n)_k

    Shapes: y_pred (N, K), y_true (N, K) (one-hot rows, or any rows of K probabilities); N samples.

    Parameters
    ----------
    from_logits : bool, default False
        If True, ``y_pred`` holds logits z (the model ends without a softmax) instead of
        probabilities p = softmax(z).
    """

    def __init__(self, from_logits: bool = False) -> None:
        self.from_logits = checks.check_bool(type(self).__name__, "from_logits", from_logits)

    def one_hot_labels(self, y_true: Any, y_pred: Any) -> Any:
        """y_true as rows (N, K): the labels themselves (the sparse loss turns indices into rows)."""
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape:
            raise ValueError(
                f"{type(self).__name__}: y_pred must have shape (N, K) and y_true the same (one-hot rows), got "
                f"y_pred {y_pred.shape} and y_true {y_true.shape}; for integer labels use "
                "SparseCategoricalCrossentropy"
            )
        return y_true

    def forward(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> Any:
        """The mean loss over the batch; remembers its inputs for :meth:`backward`.

        The same numbers as :func:`minicnn.plain.losses.categorical_cross_entropy_forward` (or, from logits,
        :func:`minicnn.plain.losses.categorical_cross_entropy_logits_forward`); plus sample weights.

        Parameters
        ----------
        y_pred : ndarray of shape (N, K)
            Probabilities p (rows summing to 1), or logits z when ``from_logits``.
        y_true : ndarray of shape (N, K)
            One-hot label rows (the sparse loss: class indices (N,) or (N, 1)).
        sample_weight : ndarray of shape (N,), optional
            Scales each sample's term (class weights); the mean still divides by N.

        Returns
        -------
        ndarray of shape ()
            The loss, a 0-d array on the active backend.

        Raises
        ------
        ValueError
            ``y_pred`` is not (N, K), or ``y_true`` does not match it.
        """
        xp = backend.array_module()
        y = self.one_hot_labels(y_true, y_pred)
        self.y_pred, self.y_true = y_pred, y
        self.weight = weights_per_row(type(self).__name__, sample_weight, len(y_pred))
        if self.from_logits:
            per_sample = -(y * log_softmax(y_pred)).sum(axis=-1)
        else:
            q = xp.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
            per_sample = -(y * xp.log(q)).sum(axis=-1)
        if self.weight is not None:
            per_sample = per_sample * self.weight
        return per_sample.mean()

    def backward(self) -> Any:
        """dL/dy_pred, the gradient with respect to whatever ``forward`` received.

        The same numbers as :func:`minicnn.plain.losses.categorical_cross_entropy_backward` (or, from logits,
        :func:`minicnn.plain.losses.categorical_cross_entropy_logits_backward`) with dloss = 1.

        Returns
        -------
        ndarray of shape (N, K)
            For logits: (softmax(z) * sum_k y_k - y) / N. For probabilities: the derivative of
            the clipped log of the renormalised row, dq = -y / q (0 where q was clipped), taken
            back through q = p / s: dp = (dq - sum_k dq_k q_k) / s, all over N.
        """
        xp = backend.array_module()
        p, y = self.y_pred, self.y_true
        n = len(p)
        if self.from_logits:
            grad = (softmax(p) * y.sum(axis=-1, keepdims=True) - y) / n
        else:
            row_sum = p.sum(axis=-1, keepdims=True)
            q = p / row_sum
            inside = (q > EPSILON) & (q < 1 - EPSILON)  # clipping is flat: no gradient outside
            dq = -y / xp.clip(q, EPSILON, 1 - EPSILON) * inside
            grad = (dq - (dq * q).sum(axis=-1, keepdims=True)) / row_sum / n
        return grad if self.weight is None else grad * self.weight[:, None]

    def fuses_with(self, activation: Any) -> bool:
        """True when ``activation`` is a Softmax and the loss reads probabilities: then dL/dz = (p - y) / N.

        With ``from_logits`` the model ends without a softmax, and :meth:`backward` already is dL/dz.
        """
        return isinstance(activation, Softmax) and not self.from_logits

    def gradient_before_activation(self) -> Any:
        """dL/dz = (p - y) / N for probabilities p = softmax(z) (N rows): the fused, stable gradient.

        The same numbers as :func:`minicnn.plain.losses.softmax_categorical_cross_entropy_backward` with dloss = 1.
        Exact for one-hot (or any summing-to-1) label rows: dL/dz_j = sum_k (-y_k / p_k) p_k ([k = j] - p_j)
        = p_j sum_k y_k - y_j.

        Returns
        -------
        ndarray of shape (N, K)
            The gradient before the softmax, times ``sample_weight`` when one was given.
        """
        grad = (self.y_pred - self.y_true) / len(self.y_pred)
        return grad if self.weight is None else grad * self.weight[:, None]


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer labels: loss = mean_n -log p_n,c_n (c_n the class of sample n).

    Shapes: y_pred (N, K), y_true (N,) or (N, 1) of class indices 0 .. K-1 (any numeric dtype,
    e.g. 2.0). The same numbers as :class:`CategoricalCrossentropy` on the one-hot rows of y_true,
    which it builds (an (N, K) array) and then reuses in every formula, the fused start included.

    Parameters
    ----------
    from_logits : bool, default False
        If True, ``y_pred`` holds logits z (no softmax at the end of the model).
    """

    def one_hot_labels(self, y_true: Any, y_pred: Any) -> Any:
        """The one-hot rows (N, K) of the class indices ``y_true`` (N,) or (N, 1): row n is 1 at c_n."""
        xp = backend.array_module()
        if y_pred.ndim != 2 or y_true.size != len(y_pred) or len(y_true) != len(y_pred):
            raise ValueError(
                f"SparseCategoricalCrossentropy: y_pred must have shape (N, K) and y_true (N,) or (N, 1) of class "
                f"indices, got y_pred {y_pred.shape} and y_true {y_true.shape}; for one-hot labels use "
                "CategoricalCrossentropy"
            )
        classes = xp.arange(y_pred.shape[-1])
        return (y_true.reshape(-1, 1) == classes).astype(y_pred.dtype)


class MeanSquaredError(Loss):
    """Mean squared error: loss = mean of (y_pred - y_true)**2 (all entries);  dL/dy_pred = 2 (y_pred - y_true) / size.

    Shapes: y_pred and y_true the same, (N, ...); Keras averages over the last axis, then over
    the batch, which is the mean over every entry (each row has as many).
    """

    def forward(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> Any:
        """The mean squared difference; remembers the difference for :meth:`backward`.

        The same numbers as :func:`minicnn.plain.losses.mean_squared_error_forward`; plus sample weights.

        Parameters
        ----------
        y_pred : ndarray of shape (N, ...)
        y_true : ndarray of the shape of y_pred
        sample_weight : ndarray of shape (N,), optional
            Scales each sample's squared errors; the mean still divides by the size.

        Returns
        -------
        ndarray of shape ()

        Raises
        ------
        ValueError
            ``y_pred`` and ``y_true`` have different shapes.
        """
        if y_pred.shape != y_true.shape:
            raise ValueError(f"MeanSquaredError: y_pred has shape {y_pred.shape} but y_true has {y_true.shape}")
        self.difference = y_pred - y_true
        weight = weights_per_row("MeanSquaredError", sample_weight, len(y_pred))
        # (N,) -> (N, 1, ...): one weight for all of a sample's entries
        self.weight = None if weight is None else weight.reshape(-1, *([1] * (y_pred.ndim - 1)))
        squared = self.difference * self.difference
        if self.weight is not None:
            squared = squared * self.weight
        return squared.mean()

    def backward(self) -> Any:
        """dL/dy_pred = 2 (y_pred - y_true) / size (times the sample weights).

        The same numbers as :func:`minicnn.plain.losses.mean_squared_error_backward` with dloss = 1.

        Returns
        -------
        ndarray of the shape of y_pred
        """
        grad = 2 * self.difference / self.difference.size
        return grad if self.weight is None else grad * self.weight

    def get_config(self) -> dict[str, Any]:
        """The class name (the loss has no settings)."""
        return {"class_name": type(self).__name__}


def last_activation(layer: Any) -> Activation | Any:
    """The activation a model's last layer ends with: its fused one (Dense(1, "sigmoid")), or the layer itself."""
    return getattr(layer, "activation", layer)


def fuses_with_last_layer(loss: Loss, last_layer: Any) -> bool:
    """Whether backward starts past ``last_layer``'s activation (see :func:`start_backward`)."""
    return loss.fuses_with(last_activation(last_layer))


def start_backward(loss: Loss, last_layer: Any) -> tuple[Any, bool]:
    """Where backward starts, after ``loss.forward``: (gradient, whether it is dL/dz past the last activation).

    The fused start: when the loss cancels the derivative of the model's last activation
    (a sigmoid into binary cross-entropy, or a softmax into categorical cross-entropy, on
    probabilities), backward starts from dL/dz = (p - y) / N, exact and stable, and the model
    skips that activation's backward (``model.backward(gradient, from_dz=True)``). Otherwise it
    starts from dL/dy, the loss's own :meth:`~Loss.backward`.

    Parameters
    ----------
    loss : Loss
        A loss whose ``forward`` has run on this batch.
    last_layer : Layer
        The model's last layer.

    Returns
    -------
    gradient : ndarray of the shape of the model's output
        dL/dz when fused, else dL/dy.
    from_dz : bool
        True when ``gradient`` is dL/dz.
    """
    if fuses_with_last_layer(loss, last_layer):
        return loss.gradient_before_activation(), True
    return loss.backward(), False


LOSSES: dict[str, type[Loss]] = {
    "binary_crossentropy": BinaryCrossentropy,
    "BinaryCrossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "CategoricalCrossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "MeanSquaredError": MeanSquaredError,
}
"""Keras's names (and class names) of every loss."""


def get(loss: str | Loss) -> Loss:
    """A loss object from a name or the object itself.

    Parameters
    ----------
    loss : str or Loss
        A key of :data:`LOSSES` ("binary_crossentropy", "categorical_crossentropy",
        "sparse_categorical_crossentropy", "mse", or a class name) for a new loss object;
        an object is returned as it is.

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        An unknown name.
    """
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        return LOSSES[loss]()
    return loss


def from_config(config: dict[str, Any]) -> Loss:
    """Rebuild a loss from :meth:`Loss.get_config` (used when loading a compiled model)."""
    config = dict(config)
    class_name = config.pop("class_name")
    if class_name not in LOSSES:
        raise ValueError(f"unknown loss class {class_name!r} in saved config; known: {', '.join(LOSSES)}")
    return LOSSES[class_name](**config)
