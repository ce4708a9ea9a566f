"""Binary cross-entropy: how wrong a probability is about a 0/1 label.

    loss = mean over the batch of  -[ y log p + (1 - y) log(1 - p) ]

Shapes: y_pred (N, 1) or (N,), y_true the same shape; the loss is a scalar.

As in Keras, probabilities are clipped to [1e-7, 1 - 1e-7] so log never sees 0.
With ``from_logits=True`` the model's last layer outputs z (no sigmoid) and the
loss uses the stable identity  max(z, 0) - z*y + log(1 + exp(-|z|)).

Why a fused gradient: for p = sigmoid(z), the chain rule through the clipped log
gives dL/dp * dp/dz, which in float32 becomes 0 * huge once p rounds to 1 and the
network can no longer learn from confident mistakes. Written out, the two factors
cancel to  dL/dz = (p - y) / N , which is exact and stable. The model uses it
whenever a sigmoid layer feeds this loss.

That decision and that gradient are made in one place, :func:`start_backward`, which
the training loop calls after the loss: it returns where backward starts, dL/dz past a
fused last activation or dL/dy otherwise. A loss takes part with two methods,
``fuses_with(activation)`` and ``gradient_before_activation()`` (a softmax +
categorical cross-entropy pair fits the same entry point: its dL/dz is also p - y).
"""

from __future__ import annotations

from typing import Any

from minicnn import backend, checks
from minicnn.layers.activations import Activation, Sigmoid, sigmoid

EPSILON = 1e-7
"""Probabilities are clipped to [EPSILON, 1 - EPSILON] before the log (Keras's epsilon)."""


class BinaryCrossentropy:
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

    def get_config(self) -> dict[str, Any]:
        """The class name and ``from_logits``, as JSON-able data (saved with a compiled model)."""
        return {"class_name": type(self).__name__, "from_logits": self.from_logits}


def last_activation(layer: Any) -> Activation | Any:
    """The activation a model's last layer ends with: its fused one (Dense(1, "sigmoid")), or the layer itself."""
    return getattr(layer, "activation", layer)


def fuses_with_last_layer(loss: BinaryCrossentropy, last_layer: Any) -> bool:
    """Whether backward starts past ``last_layer``'s activation (see :func:`start_backward`)."""
    return loss.fuses_with(last_activation(last_layer))


def start_backward(loss: BinaryCrossentropy, last_layer: Any) -> tuple[Any, bool]:
    """Where backward starts, after ``loss.forward``: (gradient, whether it is dL/dz past the last activation).

    The fused start: when the loss cancels the derivative of the model's last activation
    (a sigmoid into binary cross-entropy on probabilities), backward starts from
    dL/dz = (p - y) / N, exact and stable, and the model skips that activation's backward
    (``model.backward(gradient, from_dz=True)``). Otherwise it starts from dL/dy, the
    loss's own :meth:`~BinaryCrossentropy.backward`.

    Parameters
    ----------
    loss : BinaryCrossentropy
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


LOSSES = {"binary_crossentropy": BinaryCrossentropy, "BinaryCrossentropy": BinaryCrossentropy}


def get(loss: str | BinaryCrossentropy) -> BinaryCrossentropy:
    """A loss object from a name or the object itself.

    Parameters
    ----------
    loss : str or BinaryCrossentropy
        "binary_crossentropy" (or "BinaryCrossentropy") for a new loss object; an object
        is returned as it is.

    Returns
    -------
    BinaryCrossentropy

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
