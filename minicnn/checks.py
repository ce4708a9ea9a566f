"""Checks of what the public functions are given, each with one clear error.

Every entry point of minicnn (``fit``, ``evaluate``, ``predict``, the layer and optimiser
constructors, ``load_model``, the callbacks) calls a few of these functions at its top,
before any work is done or any memory allocated. A value that cannot be trained on is
refused with one line in one style::

    <entry point>: <argument> <what is wrong>; <what is allowed>
    fit: epochs must be a whole number of at least 1, got -3

``where`` is the entry point ("fit", "Conv2D", "Adam"), ``name`` the argument as the user
wrote it ("epochs", "validation_data x"). As in Python itself, a wrong *type* usually raises
``TypeError`` and a wrong *value* ``ValueError``; sizes such as ``kernel_size`` and names looked
up in a table (activations, initialisers) raise ``ValueError`` for both, as they always have.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from minicnn import backend

FINITE_CHECK_VALUES = 2**20
"""Values checked at a time by :func:`count_non_finite` (4 MiB of float32): no copy of a whole x."""


def describe(value: Any) -> str:
    """``value`` as an error message shows it: its repr, cut short, and its type when that helps."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)) and any(isinstance(item, np.ndarray) for item in value):
        return f"a {type(value).__name__} of {len(value)} items"
    text = " ".join(repr(value).split())  # one line, however the value prints
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, (bool, int, float, type(None))):
        return text
    return f"{text} ({type(value).__name__})"


def is_real_number(value: Any) -> bool:
    """True for int and float values (NumPy's too), False for bool, str and everything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_whole_number(value: Any) -> bool:
    """True for int values (NumPy's too), False for bool, float (even 2.0) and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


# ---- single values ------------------------------------------------------------------------
def check_whole_number(where: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int, when it is a whole number of at least ``minimum``.

    Parameters
    ----------
    where : str
        The entry point, e.g. "fit".
    name : str
        The argument, e.g. "epochs".
    value : Any
        What the user passed.
    minimum : int, default 1
        The smallest value allowed.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        ``value`` is not an int (a bool, a float such as 2.5, a str).
    ValueError
        ``value`` is smaller than ``minimum``.
    """
    if not is_whole_number(value):
        raise TypeError(f"{where}: {name} must be a whole number of at least {minimum}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def check_number(
    where: str,
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    include_low: bool = True,
    include_high: bool = True,
) -> float:
    """``value`` as a float, when it is a finite number between ``low`` and ``high``.

    Parameters
    ----------
    where, name : str
        The entry point and the argument, for the message.
    value : Any
        What the user passed.
    low, high : float
        The bounds (infinite bounds mean none on that side).
    include_low, include_high : bool, default True
        Whether each bound itself is allowed: [0, 1) is ``include_high=False``.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        ``value`` is not a number (a str such as "0.01", a bool, None).
    ValueError
        ``value`` is NaN, infinite, or outside the interval.
    """
    interval = f"{'[' if include_low and math.isfinite(low) else '('}{low:g}, {high:g}"
    interval += "]" if include_high and math.isfinite(high) else ")"
    if not is_real_number(value):
        raise TypeError(f"{where}: {name} must be a number in {interval}, got {describe(value)}")
    number = float(value)
    above_low = number >= low if include_low else number > low
    below_high = number <= high if include_high else number < high
    if not (math.isfinite(number) and above_low and below_high):  # NaN fails every comparison
        raise ValueError(f"{where}: {name} must be in {interval}, got {value!r}")
    return number


def check_choice(where: str, name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` itself, when it is one of ``choices`` (compared by type and value: True is not 1)."""
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        shown = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{where}: {name} must be one of {shown}, got {describe(value)}")
    return value


def check_bool(where: str, name: str, value: Any) -> bool:
    """``value`` itself, when it is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {describe(value)}")
    return bool(value)


def check_optional_str(where: str, name: str, value: Any) -> str | None:
    """``value`` itself, when it is a str or None."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{where}: {name} must be a str or None, got {describe(value)}")
    return value


def check_list_of(where: str, name: str, value: Any, kind: type) -> list[Any]:
    """``value`` as a list, when it is a list or tuple whose every item is a ``kind`` (a class)."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{where}: {name} must be a list of {kind.__name__} objects, got {describe(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, kind):
            raise TypeError(f"{where}: {name}[{index}] must be a {kind.__name__}, got {describe(item)}")
    return list(value)


# ---- arrays -------------------------------------------------------------------------------
def as_numeric_array(where: str, name: str, value: Any) -> Any:
    """``value`` as an array of numbers: a NumPy (or CuPy) array passes as it is, a list is converted.

    Lists and tuples become arrays as ``np.asarray`` makes them (as Keras accepts lists).

    Parameters
    ----------
    where, name : str
        The entry point and the argument, for the message.
    value : Any
        An array, or nested lists of numbers.

    Returns
    -------
    ndarray
        Never a copy of an array that was passed.

    Raises
    ------
    TypeError
        ``value`` is None, a scalar, a str, or holds something that is not a number
        (strings, None, complex numbers).
    ValueError
        Nested lists of unequal lengths.
    """
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise TypeError(f"{where}: {name} must be an array of numbers, got {describe(value)}")
    if isinstance(value, np.ndarray) or (hasattr(value, "__cuda_array_interface__") and hasattr(value, "dtype")):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{where}: {name} cannot be read as an array ({error}); "
                "pass a NumPy array, or nested lists whose rows have equal lengths"
            ) from None
    if array.dtype.kind in "US":
        raise TypeError(
            f"{where}: {name} must hold numbers, got strings (dtype {array.dtype}); "
            "convert them first (labels: 0 = Pneumonia, 1 = Normal)"
        )
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {name} must hold int or float numbers, got dtype {array.dtype}")
    if array.ndim == 0:
        raise TypeError(f"{where}: {name} must be an array with one row per sample, got a single number")
    return array


def count_non_finite(array: Any, dtype: Any = None) -> int:
    """How many values of ``array`` are NaN or infinite, after a cast to ``dtype`` (default: its own).

    Counted about ``FINITE_CHECK_VALUES`` values (whole rows) at a time, so that a large x
    is never copied whole; an integer array has none, and costs nothing. With ``dtype="float32"`` a
    float64 value too large for float32 (1e300) counts too: the cast makes it infinite.

    Parameters
    ----------
    array : ndarray
        Any numeric array on the active backend.
    dtype : dtype or str, optional
        The type the values will be used in (the model's dtype).

    Returns
    -------
    int
    """
    if array.dtype.kind not in "fc":
        return 0
    module = backend.array_module()
    xp = module if isinstance(array, module.ndarray) else np  # an array on the backend, or on the host
    if array.ndim == 0:
        array = array.reshape(1)
    rows_per_chunk = max(1, FINITE_CHECK_VALUES // max(1, array[:1].size))
    count = 0
    with np.errstate(over="ignore", invalid="ignore"):  # 1e300 becoming inf in float32 is what we count
        for start in range(0, len(array), rows_per_chunk):
            chunk = array[start : start + rows_per_chunk]  # a view: even a strided x is never copied whole
            if dtype is not None:
                chunk = chunk.astype(dtype, copy=False)
            count += int(chunk.size - xp.count_nonzero(xp.isfinite(chunk)))
    return count


def check_finite(where: str, name: str, array: Any, dtype: Any) -> None:
    """Raise ValueError, saying how many values, when ``array`` holds NaN or infinite values.

    Parameters
    ----------
    where, name : str
        The entry point and the argument, for the message.
    array : ndarray
        The values to check.
    dtype : dtype or str
        The type they will be cast to (the model's dtype).
    """
    bad = count_non_finite(array, dtype)
    if bad:
        raise ValueError(
            f"{where}: {name} holds {bad} NaN or infinite values (of {array.size}, as {np.dtype(dtype).name}); "
            "replace or remove them: nothing can be learnt from them"
        )


def check_label_shape(
    where: str, name: str, labels: Any, samples: int | None, output_shape: tuple[int, ...] = (1,)
) -> None:
    """Labels must be one per sample: shape (N,) or (N, 1), with N = ``samples`` when given.

    For a model with more outputs per sample (``output_shape``, e.g. (3,)), (N, *output_shape).
    """
    shape = tuple(labels.shape)
    if tuple(output_shape) == (1,):
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            hint = "; for one-hot labels (N, 2) pass y.argmax(axis=1)" if shape[1:] == (2,) else ""
            raise ValueError(f"{where}: {name} must hold one label per sample, shape (N,) or (N, 1), got {shape}{hint}")
    elif shape[1:] != tuple(output_shape):
        wanted = ", ".join(map(str, output_shape))
        raise ValueError(f"{where}: {name} must have shape (N, {wanted}), one row per output of the model, got {shape}")
    if samples is not None and shape[0] != samples:
        raise ValueError(f"{where}: x has {samples} samples but {name} has {shape[0]}; give one label per sample")


def check_binary_labels(where: str, name: str, labels: Any, whole: bool) -> None:
    """Labels must lie in [0, 1] (binary cross-entropy); with ``whole``, be exactly 0 or 1 (accuracy).

    Keras trains on labels such as 2 without a word (the loss just becomes meaningless);
    minicnn refuses them on purpose, naming the values found.

    Parameters
    ----------
    where, name : str
        The entry point and the argument, for the message.
    labels : ndarray
        Host or backend array of labels.
    whole : bool
        Require 0 and 1 only (the accuracy metric needs them; soft labels such as 0.9 do not have one).
    """
    values = np.asarray(backend.to_numpy(labels), dtype=np.float64).reshape(-1)
    outside = ~((values >= 0) & (values <= 1))  # also true for NaN
    if outside.any():
        found = np.unique(values[outside])
        shown = ", ".join(f"{value:g}" for value in found[:10]) + (" ..." if found.size > 10 else "")
        classes = found[np.isfinite(found)]
        hint = (
            "; for more than two classes, end the model with Dense(K, activation='softmax') and compile with "
            "loss='sparse_categorical_crossentropy'"
            if classes.size and np.all((classes >= 0) & (classes == np.round(classes)))
            else ""
        )
        raise ValueError(
            f"{where}: {name} must hold labels in [0, 1] for binary cross-entropy; found {shown} "
            f"({int(outside.sum())} of {values.size} labels){hint}"
        )
    if whole:
        soft = (values != 0) & (values != 1)
        if soft.any():
            raise ValueError(
                f"{where}: {name} holds {int(soft.sum())} labels between 0 and 1 (e.g. {values[soft][0]:g}), but "
                "metrics=['accuracy'] needs labels 0 and 1; compile without the metric to train on soft labels"
            )


def check_class_index_labels(where: str, name: str, labels: Any, samples: int | None, num_classes: int) -> None:
    """Sparse labels: one class index per sample, shape (N,) or (N, 1), whole numbers in [0, num_classes).

    The labels of ``sparse_categorical_crossentropy``: 2 (or 2.0) means the third class. A
    fractional or out-of-range value would silently pick no class (an all-zero one-hot row), so
    it is refused, naming the values found.

    Parameters
    ----------
    where, name : str
        The entry point and the argument, for the message.
    labels : ndarray
        Host or backend array of labels.
    samples : int or None
        N, when known (the number of images).
    num_classes : int
        K, the model's outputs per sample.
    """
    shape = tuple(labels.shape)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        hint = "; one-hot rows need loss='categorical_crossentropy'" if shape[1:] == (num_classes,) else ""
        raise ValueError(
            f"{where}: {name} must hold one class index per sample, shape (N,) or (N, 1), for sparse categorical "
            f"cross-entropy, got {shape}{hint}"
        )
    if samples is not None and shape[0] != samples:
        raise ValueError(f"{where}: x has {samples} samples but {name} has {shape[0]}; give one label per sample")
    values = np.asarray(backend.to_numpy(labels), dtype=np.float64).reshape(-1)
    bad = ~((values >= 0) & (values < num_classes) & (values == np.round(values)))  # also true for NaN
    if bad.any():
        found = np.unique(values[bad])
        shown = ", ".join(f"{value:g}" for value in found[:10]) + (" ..." if found.size > 10 else "")
        raise ValueError(
            f"{where}: {name} must hold integer class indices in [0, {num_classes}) for sparse categorical "
            f"cross-entropy (the model has {num_classes} outputs); found {shown} ({int(bad.sum())} of "
            f"{values.size} labels)"
        )


def check_one_hot_labels(
    where: str, name: str, labels: Any, samples: int | None, num_classes: int, whole: bool
) -> None:
    """Categorical labels: one row of ``num_classes`` values in [0, 1] per sample, each row summing to 1.

    The labels of ``categorical_crossentropy``: one-hot rows, or soft rows (label smoothing);
    with ``whole`` (the accuracy metric), exactly one-hot.

    Parameters
    ----------
    where, name : str
        The entry point and the argument, for the message.
    labels : ndarray
        Host or backend array of labels, shape (N, num_classes).
    samples : int or None
        N, when known.
    num_classes : int
        K, the model's outputs per sample.
    whole : bool
        Require rows of 0s and one 1.
    """
    shape = tuple(labels.shape)
    if len(shape) != 2 or shape[1] != num_classes:
        hint = (
            "; integer labels need loss='sparse_categorical_crossentropy'"
            if len(shape) == 1 or shape[1:] == (1,)
            else ""
        )
        raise ValueError(
            f"{where}: {name} must hold one-hot rows of shape (N, {num_classes}) for categorical cross-entropy "
            f"(the model has {num_classes} outputs), got {shape}{hint}"
        )
    if samples is not None and shape[0] != samples:
        raise ValueError(f"{where}: x has {samples} samples but {name} has {shape[0]}; give one label per sample")
    values = np.asarray(backend.to_numpy(labels), dtype=np.float64)
    outside = ~((values >= 0) & (values <= 1))  # also true for NaN
    if outside.any():
        raise ValueError(
            f"{where}: {name} must hold values in [0, 1] (one-hot rows) for categorical cross-entropy; "
            f"found {values[outside][0]:g} ({int(outside.sum())} of {values.size} values)"
        )
    off = np.abs(values.sum(axis=1) - 1) > 1e-3
    if off.any():
        raise ValueError(
            f"{where}: every row of {name} must sum to 1 (one-hot rows) for categorical cross-entropy; "
            f"{int(off.sum())} of {len(values)} rows do not (e.g. row {int(np.argmax(off))} sums to "
            f"{values.sum(axis=1)[off][0]:g})"
        )
    if whole:
        soft = ~np.isin(values, (0, 1)).all(axis=1)
        if soft.any():
            raise ValueError(
                f"{where}: {name} holds {int(soft.sum())} rows that are not one-hot (e.g. row {int(np.argmax(soft))}), "
                "but metrics=['accuracy'] needs one-hot rows; compile without the metric to train on soft labels"
            )


# ---- arguments that only training takes ------------------------------------------------------
VERBOSE_CHOICES = ("auto", 0, 1, 2)
"""What ``verbose`` may be: "auto", 0 (silent), 1 (a progress bar) or 2 (one line per epoch)."""


def check_verbose(where: str, value: Any) -> int | str:
    """``value`` itself, when it is "auto", 0, 1 or 2 (an int, not a bool)."""
    if value == "auto" or (is_whole_number(value) and value in (0, 1, 2)):
        return value if value == "auto" else int(value)
    raise ValueError(f"{where}: verbose must be one of 'auto', 0, 1, 2, got {describe(value)}")


def check_class_weight(
    where: str, value: Any, allow_balanced: bool = True, num_classes: int = 2
) -> dict[int, float] | str | None:
    """A class_weight as {label: weight} (or "balanced"): labels 0 .. num_classes-1, weights finite and >= 0.

    Parameters
    ----------
    where : str
        The entry point, for the message.
    value : Any
        None, a dict such as {0: 1.0, 1: 3.0}, or "balanced" (where ``allow_balanced``).
    allow_balanced : bool, default True
        Whether "balanced" is allowed.
    num_classes : int, default 2
        How many classes the labels have (2: binary, 0 Pneumonia and 1 Normal; K for a softmax model).

    Returns
    -------
    dict of int to float, or "balanced", or None
        None also for an empty dict (every weight 1).

    Raises
    ------
    TypeError
        Neither a dict nor "balanced", or a weight that is not a number.
    ValueError
        A label outside 0 .. num_classes-1, a negative or non-finite weight, or only zero weights.
    """
    allowed = "a dict such as {0: 1.0, 1: 3.0}" + (" or 'balanced'" if allow_balanced else "")
    if value is None or (allow_balanced and value == "balanced"):
        return value
    if isinstance(value, str):
        raise ValueError(f"{where}: class_weight must be {allowed}, got {value!r}")
    if not isinstance(value, dict):
        raise TypeError(f"{where}: class_weight must be {allowed}, got {describe(value)}")
    weights = {}
    for label, weight in value.items():
        if not (is_whole_number(label) and 0 <= label < num_classes):
            if num_classes == 2:
                raise ValueError(
                    f"{where}: class_weight has the label {label!r}, but binary labels are 0 (Pneumonia) and 1 (Normal)"
                )
            raise ValueError(
                f"{where}: class_weight has the label {label!r}, but the model's {num_classes} classes are "
                f"0 .. {num_classes - 1}"
            )
        weights[int(label)] = check_number(where, f"class_weight[{label}]", weight, 0.0)
    if weights and not any(weights.values()):
        raise ValueError(f"{where}: class_weight gives every class the weight 0; at least one must be above 0")
    return weights or None
