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
"""

from __future__ import annotations

from typing import Any

from minicnn import backend, checks
from minicnn.functions import sigmoid

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

    def gradient_before_sigmoid(self) -> Any:
        """dL/dz = (p - y) / N for probabilities p = sigmoid(z): the fused, stable gradient.

        The same numbers as :func:`minicnn.plain.losses.sigmoid_binary_cross_entropy_backward` with
        dloss = 1, bit for bit.

        Returns
        -------
        ndarray of the shape of y_pred
            The gradient before the sigmoid, times ``sample_weight`` when one was given.
        """
        grad = (self.y_pred - self.y_true) / self.y_pred.size
        return grad if self.weight is None else grad * self.weight

    def get_config(self) -> dict[str, Any]:
        """The class name and ``from_logits``, as JSON-able data (saved with a compiled model)."""
        return {"class_name": type(self).__name__, "from_logits": self.from_logits}


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
