"""How good is a classifier? Accuracy, confusion matrix, ROC curve and AUC: binary, then K classes.

Every function takes host NumPy arrays (call ``backend.to_numpy`` on CuPy
arrays first) and knows nothing of layers or models: labels and probabilities
in, numbers out.

The chest X-ray study labels Normal = 1 and Pneumonia = 0, and the model
outputs ``p`` = the probability of Normal (a sigmoid). Clinicians, though,
count the *disease* as the positive class, so :func:`classification_report`
takes Pneumonia (label 0) as positive and scores it with ``1 - p``.

Two rules hold throughout:

* A probability becomes a predicted label with ``p > threshold`` (strictly
  greater, as in Keras' ``binary_accuracy``), so ``p == 0.5`` is predicted 0.
* A ratio whose denominator is zero is *undefined* and reported as ``None``
  (``null`` in JSON, "n/a" on a console), never as 0.0. Specificity with no
  negative sample in the test set is not "0 % of the negatives recognised":
  there were none to recognise. scikit-learn's default of 0.0 would hide that
  behind a number that looks like a real, terrible result.

For K classes (a softmax output: ``y_prob`` of shape (N, K), row n the probabilities of
sample n's classes) the functions at the end of this file take labels as class indices
0..K-1 of shape (N,) or one-hot rows of shape (N, K) (Keras's ``sparse_categorical_*`` and
``categorical_*`` conventions), predict the class of largest probability (argmax; a tie
goes to the lower index, as NumPy's and Keras's argmax), and score each class against the
rest (one-vs-rest). A macro average is the plain mean over the K classes, and is undefined
(None) as soon as one class's value is: averaging only the defined ones would flatter a
model that never predicts some class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_labels",
    "as_probabilities",
    "binary_accuracy",
    "confusion_matrix",
    "roc_curve",
    "roc_auc",
    "classification_report",
    "format_metric",
    # K classes (softmax outputs): beside the binary functions above, which stay as they are
    "as_class_indices",
    "as_class_probabilities",
    "categorical_accuracy",
    "per_class_recall",
    "per_class_precision",
    "macro_average",
    "roc_auc_one_vs_rest",
    "multiclass_report",
]


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _as_vector(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D array; accept (N,) or Keras-style (N, 1)."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    return array


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} values but {name_b} has {len(b)}")


def as_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    """Check binary labels and return them as an int64 vector.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, 1)
        0/1 labels; floats such as 0.0 and 1.0 are accepted (Keras stores labels
        as float32).
    name : str
        What to call the argument in error messages.

    Returns
    -------
    numpy.ndarray of shape (N,), int64

    Raises
    ------
    ValueError
        If the array is empty, has the wrong shape, or holds anything other
        than 0 and 1 (NaN included); the message gives how many values are bad.
    """
    labels = _as_vector(y_true, name)
    bad = ~np.isin(labels, (0, 1))  # NaN is in neither, so it counts as bad too
    if bad.any():
        examples = np.unique(labels[bad])[:5].tolist()
        raise ValueError(
            f"{name} must hold only the labels 0 and 1; {int(bad.sum())} of {len(labels)} "
            f"values do not (e.g. {examples})"
        )
    return labels.astype(np.int64)


def as_probabilities(y_prob: Any, name: str = "y_prob") -> np.ndarray:
    """Check probabilities and return them as a float64 vector.

    Parameters
    ----------
    y_prob : array_like of shape (N,) or (N, 1)
        Values in [0, 1].
    name : str
        What to call the argument in error messages.

    Returns
    -------
    numpy.ndarray of shape (N,), float64

    Raises
    ------
    ValueError
        If the array is empty, has the wrong shape, or holds NaN or values
        outside [0, 1]; the message gives how many values are bad.
    """
    prob = _as_vector(y_prob, name).astype(np.float64)
    n_nan = int(np.isnan(prob).sum())
    if n_nan:
        raise ValueError(f"{name} holds {n_nan} NaN values of {len(prob)}")
    n_outside = int(((prob < 0.0) | (prob > 1.0)).sum())
    if n_outside:
        raise ValueError(f"{name} must be probabilities in [0, 1]; {n_outside} of {len(prob)} values are outside")
    return prob


def _as_scores(scores: Any, name: str = "scores") -> np.ndarray:
    """Check ranking scores (any finite reals, not only probabilities)."""
    values = _as_vector(scores, name).astype(np.float64)
    n_bad = int((~np.isfinite(values)).sum())
    if n_bad:
        raise ValueError(f"{name} must be finite; {n_bad} of {len(values)} values are NaN or infinite")
    return values


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:  # also rejects NaN
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return threshold


def _ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None (undefined) when the denominator is 0 (see the module docstring)."""
    return float(numerator / denominator) if denominator else None


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def binary_accuracy(y_true: Any, y_prob: Any, threshold: float = 0.5) -> float:
    """Fraction of samples whose thresholded probability equals the label.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, 1)
        0/1 labels.
    y_prob : array_like of shape (N,) or (N, 1)
        Predicted probability of label 1.
    threshold : float
        A sample is predicted 1 when ``y_prob > threshold`` (strictly, like
        Keras), so a probability exactly at the threshold is predicted 0.

    Returns
    -------
    float
        In [0, 1].
    """
    labels = as_labels(y_true)
    prob = as_probabilities(y_prob)
    _check_same_length(labels, prob, "y_true", "y_prob")
    predicted = (prob > _check_threshold(threshold)).astype(np.int64)
    return float(np.mean(predicted == labels))


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence[int] = (0, 1)) -> np.ndarray:
    """Count each (actual, predicted) pair of labels.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, 1)
        Actual labels.
    y_pred : array_like of shape (N,) or (N, 1)
        Predicted labels (already thresholded, not probabilities).
    labels : sequence of L distinct labels
        The order of the rows and columns. Every value in ``y_true`` and
        ``y_pred`` must be one of them.

    Returns
    -------
    numpy.ndarray of shape (L, L), int64
        ``matrix[i, j]`` = number of samples whose actual label is
        ``labels[i]`` and predicted label is ``labels[j]``: rows are actual,
        columns are predicted. The entries sum to N.

    Examples
    --------
    >>> confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0]).tolist()
    [[1, 1], [1, 2]]
    """
    actual = _as_vector(y_true, "y_true")
    predicted = _as_vector(y_pred, "y_pred")
    _check_same_length(actual, predicted, "y_true", "y_pred")
    label_values = np.asarray(labels)
    if label_values.ndim != 1 or len(label_values) == 0:
        raise ValueError(f"labels must be a non-empty sequence, got {labels!r}")
    if len(np.unique(label_values)) != len(label_values):
        raise ValueError(f"labels must be distinct, got {labels!r}")

    actual_index = _label_index(actual, label_values, "y_true")
    predicted_index = _label_index(predicted, label_values, "y_pred")
    n_labels = len(label_values)
    # Each (row, column) cell gets one number, row * L + column; bincount then
    # counts all cells in one pass, and reshape lays the counts out as a grid.
    cell = actual_index * n_labels + predicted_index
    counts = np.bincount(cell, minlength=n_labels * n_labels)
    return counts.reshape(n_labels, n_labels).astype(np.int64)


def _label_index(values: np.ndarray, labels: np.ndarray, name: str) -> np.ndarray:
    """Position of each value within ``labels``: (N,) values -> (N,) int indices."""
    matches = values[:, None] == labels[None, :]  # (N, L): True where value == label
    unknown = ~matches.any(axis=1)
    if unknown.any():
        examples = np.unique(values[unknown])[:5].tolist()
        raise ValueError(
            f"{int(unknown.sum())} of {len(values)} values in {name} are not in labels "
            f"{labels.tolist()} (e.g. {examples})"
        )
    return matches.argmax(axis=1)


def roc_curve(y_true: Any, scores: Any, positive_label: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic: true vs false positive rate at every threshold.

    A sample is called positive when ``score >= threshold``. Lowering the
    threshold past each distinct score adds the samples with that score to
    the positives; samples that share a score (ties) enter together, as one
    diagonal step.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, 1)
        0/1 labels; both classes must be present.
    scores : array_like of shape (N,) or (N, 1)
        Any finite numbers, larger meaning "more likely positive".
    positive_label : int, one of {0, 1}
        The label that counts as positive.

    Returns
    -------
    fpr : numpy.ndarray of shape (K + 1,)
        False positive rate (1 - specificity), from 0 up to 1.
    tpr : numpy.ndarray of shape (K + 1,)
        True positive rate (sensitivity), from 0 up to 1.
    thresholds : numpy.ndarray of shape (K + 1,)
        Decreasing: ``inf`` (nothing called positive, the point (0, 0)),
        then the K distinct scores from highest to lowest; the last one calls
        everything positive, the point (1, 1).

    Raises
    ------
    ValueError
        If only one class is present: one of the two rates would divide by zero.
    """
    is_positive = _positives(y_true, positive_label)
    values = _as_scores(scores)
    _check_same_length(is_positive, values, "y_true", "scores")
    n_positive = int(is_positive.sum())
    n_negative = len(is_positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError(
            "ROC needs both classes in y_true, but all "
            f"{len(is_positive)} samples are {'negative' if n_positive == 0 else 'positive'}"
        )

    # Sort from highest to lowest score; walking down this list lowers the threshold.
    order = np.argsort(-values, kind="stable")
    sorted_scores = values[order]
    true_positives = np.cumsum(is_positive[order])
    false_positives = np.cumsum(~is_positive[order])

    # Keep only the last sample of each run of equal scores, so that tied
    # samples cross the threshold together.
    last_of_run = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    tpr = np.concatenate([[0.0], true_positives[last_of_run] / n_positive])
    fpr = np.concatenate([[0.0], false_positives[last_of_run] / n_negative])
    thresholds = np.concatenate([[np.inf], sorted_scores[last_of_run]])
    return fpr, tpr, thresholds


def roc_auc(y_true: Any, scores: Any, positive_label: int = 1) -> float:
    """Area under the ROC curve.

    The trapezoid area under :func:`roc_curve` equals the Mann-Whitney
    probability that a random positive sample scores higher than a random
    negative one, a tie counting 1/2. So 1.0 is a perfect ranking, 0.5 is
    chance and 0.0 is a perfectly inverted one. Only the order of the scores
    matters: any strictly increasing transform leaves the AUC unchanged.

    Parameters
    ----------
    y_true, scores : array_like of shape (N,) or (N, 1)
        As for :func:`roc_curve`: 0/1 labels with both classes present, and finite scores.
    positive_label : int, one of {0, 1}
        The label that counts as positive.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    ValueError
        If only one class is present (the AUC is undefined);
        :func:`classification_report` turns this case into ``None``.
    """
    fpr, tpr, _ = roc_curve(y_true, scores, positive_label)
    # Trapezoid rule: each step adds width * mean height. A tie moves both
    # rates at once, and its sloped edge is what gives ties half credit.
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _positives(y_true: Any, positive_label: int) -> np.ndarray:
    """Check labels and return (N,) bool: True where the label is ``positive_label``."""
    if positive_label not in (0, 1):
        raise ValueError(f"positive_label must be 0 or 1, got {positive_label!r}")
    return as_labels(y_true) == positive_label


def classification_report(
    y_true: Any,
    prob_normal: Any,
    threshold: float = 0.5,
    positive_label: int = 0,
    class_names: Sequence[str] = ("Pneumonia", "Normal"),
) -> dict[str, Any]:
    """The study's test-set numbers, with the disease (Pneumonia) as the positive class.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, 1)
        0/1 labels: 0 = Pneumonia, 1 = Normal.
    prob_normal : array_like of shape (N,) or (N, 1)
        The model's probability of Normal (label 1).
    threshold : float
        Predicted Normal when ``prob_normal > threshold`` (the rule of
        :func:`binary_accuracy`), else Pneumonia.
    positive_label : int, one of {0, 1}
        The class that sensitivity, specificity, precision and F1 are about;
        0 (Pneumonia) by default. Its ROC score is ``1 - prob_normal`` for
        label 0 and ``prob_normal`` for label 1.
    class_names : pair of str
        Names of label 0 and label 1, in that order.

    Returns
    -------
    dict
        Plain Python numbers, so ``json.dumps`` works:

        * ``accuracy``: correct / N.
        * ``sensitivity``: TP / (TP + FN), the recall of the positive class;
          ``None`` when no sample is actually positive.
        * ``specificity``: TN / (TN + FP); ``None`` when no sample is actually negative.
        * ``precision``: TP / (TP + FP); ``None`` when nothing is predicted positive.
        * ``f1``: 2 TP / (2 TP + FP + FN), which equals
          2 * precision * sensitivity / (precision + sensitivity) whenever those are
          defined and not both 0; ``None`` only when there is no positive at all,
          actual or predicted (the rule of scikit-learn 1.3 and later).
        * ``roc_auc``: ``None`` when only one class is present.
        * ``confusion_matrix``: ``{"labels": [name of 0, name of 1], "rows": "actual",
          "columns": "predicted", "matrix": [[int, int], [int, int]]}``.
        * ``n_test``: N. ``threshold``: the threshold used.
          ``positive_class``: the name of the positive class.

        An undefined ratio (zero denominator) is ``None``, never 0.0.
    """
    labels = as_labels(y_true)
    prob = as_probabilities(prob_normal, "prob_normal")
    _check_same_length(labels, prob, "y_true", "prob_normal")
    threshold = _check_threshold(threshold)
    if positive_label not in (0, 1):
        raise ValueError(f"positive_label must be 0 or 1, got {positive_label!r}")
    if len(class_names) != 2:
        raise ValueError(f"class_names must name labels 0 and 1, got {list(class_names)}")

    predicted = (prob > threshold).astype(np.int64)  # 1 = Normal
    matrix = confusion_matrix(labels, predicted, labels=(0, 1))
    positive, negative = positive_label, 1 - positive_label
    tp, fn = matrix[positive, positive], matrix[positive, negative]
    fp, tn = matrix[negative, positive], matrix[negative, negative]

    scores = prob if positive_label == 1 else 1.0 - prob
    both_classes = 0 < labels.sum() < len(labels)

    return {
        "accuracy": _ratio(np.trace(matrix), matrix.sum()),  # N > 0 (checked), so always defined
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "precision": _ratio(tp, tp + fp),
        # The count form of F1 is defined even when precision or sensitivity is not
        # (e.g. nothing predicted positive but positives missed: F1 = 0, a real failure).
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(labels, scores, positive_label) if both_classes else None,
        "confusion_matrix": {
            "labels": [str(name) for name in class_names],
            "rows": "actual",
            "columns": "predicted",
            "matrix": matrix.tolist(),  # tolist gives plain ints, which json accepts
        },
        "n_test": int(len(labels)),
        "threshold": threshold,
        "positive_class": str(class_names[positive_label]),
    }


def format_metric(value: float | None, digits: int = 4) -> str:
    """A metric for the console: ``0.9213`` with ``digits`` decimals, or "n/a" when undefined (None).

    Examples
    --------
    >>> format_metric(0.92134), format_metric(None)
    ('0.9213', 'n/a')
    """
    return "n/a" if value is None else f"{value:.{digits}f}"


# ---------------------------------------------------------------------------
# K classes
# ---------------------------------------------------------------------------


def as_class_probabilities(y_prob: Any, name: str = "y_prob") -> np.ndarray:
    """Check a softmax output and return it as float64 (N, K).

    Parameters
    ----------
    y_prob : array_like of shape (N, K), K >= 2
        Row n: the probability of each class for sample n (each in [0, 1]; the rows of a
        softmax sum to 1, which is not required here: any scores in [0, 1] rank the same way).
    name : str
        What to call the argument in error messages.

    Returns
    -------
    numpy.ndarray of shape (N, K), float64

    Raises
    ------
    ValueError
        Not (N, K) with N >= 1 and K >= 2, NaN, or values outside [0, 1].
    """
    prob = np.asarray(y_prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[1] < 2 or prob.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, K) with N >= 1 and K >= 2 classes, got {prob.shape}")
    n_bad = int((np.isnan(prob) | (prob < 0.0) | (prob > 1.0)).sum())
    if n_bad:
        raise ValueError(f"{name} must be probabilities in [0, 1]; {n_bad} of {prob.size} values are NaN or outside")
    return prob


def as_class_indices(y_true: Any, num_classes: int, name: str = "y_true") -> np.ndarray:
    """Integer labels (N,) or one-hot rows (N, K) -> class indices (N,) int64.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, K)
        Class indices 0..K-1 (floats such as 2.0 are accepted), or one-hot rows (exactly one
        1 per row, the rest 0).
    num_classes : int
        K.
    name : str
        What to call the argument in error messages.

    Returns
    -------
    numpy.ndarray of shape (N,), int64

    Raises
    ------
    ValueError
        Another shape, an index outside 0..K-1 (NaN included), or a row that is not one-hot.

    Examples
    --------
    >>> as_class_indices([2, 0, 1], 3).tolist(), as_class_indices([[0, 0, 1], [1, 0, 0]], 3).tolist()
    ([2, 0, 1], [2, 0])
    """
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] == num_classes and num_classes > 1:
        one_hot = np.isin(labels, (0, 1)).all(axis=1) & (labels.sum(axis=1) == 1)
        if not one_hot.all():
            raise ValueError(
                f"{name} of shape {labels.shape} must hold one-hot rows (one 1, the rest 0); "
                f"{int((~one_hot).sum())} of {len(labels)} rows do not"
            )
        return labels.argmax(axis=1).astype(np.int64)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"{name} must be class indices of shape (N,) or one-hot rows of shape (N, {num_classes}), "
            f"got {labels.shape}"
        )
    bad = ~np.isin(labels, np.arange(num_classes))  # NaN and 1.5 are in no class
    if bad.any():
        examples = np.unique(labels[bad])[:5].tolist()
        raise ValueError(
            f"{name} must hold class indices 0..{num_classes - 1}; {int(bad.sum())} of {len(labels)} "
            f"values do not (e.g. {examples})"
        )
    return labels.astype(np.int64)


def _classes_and_predictions(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels (N,), probabilities (N, K), predicted classes (N,)), checked against each other."""
    prob = as_class_probabilities(y_prob)
    labels = as_class_indices(y_true, prob.shape[1])
    _check_same_length(labels, prob, "y_true", "y_prob")
    return labels, prob, prob.argmax(axis=1)


def categorical_accuracy(y_true: Any, y_prob: Any) -> float:
    """Fraction of samples whose most probable class is the actual one.

    Keras's ``categorical_accuracy`` (one-hot labels) and ``sparse_categorical_accuracy``
    (integer labels) in one function: either form of ``y_true`` is accepted.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, K)
        Class indices or one-hot rows.
    y_prob : array_like of shape (N, K)
        Class probabilities.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> categorical_accuracy([0, 2, 1], [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    0.6666666666666666
    """
    labels, _, predicted = _classes_and_predictions(y_true, y_prob)
    return float(np.mean(predicted == labels))


def per_class_recall(matrix: Any) -> list[float | None]:
    """Recall (sensitivity) of each class: matrix[k, k] / (row k's sum); None for a class with no sample.

    Parameters
    ----------
    matrix : array_like of shape (K, K)
        Counts, rows actual, columns predicted (:func:`confusion_matrix`).

    Returns
    -------
    list of K float or None
    """
    counts = np.asarray(matrix)
    return [_ratio(counts[k, k], counts[k].sum()) for k in range(len(counts))]


def per_class_precision(matrix: Any) -> list[float | None]:
    """Precision of each class: matrix[k, k] / (column k's sum); None for a class never predicted.

    Parameters
    ----------
    matrix : array_like of shape (K, K)
        Counts, rows actual, columns predicted.

    Returns
    -------
    list of K float or None

    Examples
    --------
    >>> m = [[5, 1, 0], [2, 3, 0], [1, 1, 0]]
    >>> per_class_recall(m), per_class_precision(m)
    ([0.8333333333333334, 0.6, 0.0], [0.625, 0.6, None])
    """
    counts = np.asarray(matrix)
    return [_ratio(counts[k, k], counts[:, k].sum()) for k in range(len(counts))]


def macro_average(values: Sequence[float | None]) -> float | None:
    """The mean over the classes; None when any class's value is undefined (see the module docstring)."""
    if any(value is None for value in values):
        return None
    return float(np.mean(values))


def roc_auc_one_vs_rest(y_true: Any, y_prob: Any) -> list[float | None]:
    """The AUC of each class against all the others, scored by that class's probability.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, K)
        Class indices or one-hot rows.
    y_prob : array_like of shape (N, K)
        Class probabilities; column k is class k's score.

    Returns
    -------
    list of K float or None
        :func:`roc_auc` of "class k" vs "not k"; None for a class that is absent, or that is
        every sample (one of the two rates would divide by zero).
    """
    labels, prob, _ = _classes_and_predictions(y_true, y_prob)
    aucs: list[float | None] = []
    for k in range(prob.shape[1]):
        is_k = (labels == k).astype(np.int64)
        aucs.append(roc_auc(is_k, prob[:, k]) if 0 < is_k.sum() < len(is_k) else None)
    return aucs


def multiclass_report(y_true: Any, y_prob: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """The K-class counterpart of :func:`classification_report`: overall, per class, and macro.

    Parameters
    ----------
    y_true : array_like of shape (N,) or (N, K)
        Class indices or one-hot rows.
    y_prob : array_like of shape (N, K)
        Class probabilities (a softmax output); the prediction is the argmax.
    class_names : sequence of K str
        The name of class 0, 1, ..., K-1.

    Returns
    -------
    dict
        Plain Python numbers, so ``json.dumps`` works:

        * ``accuracy``; ``n_test``: N;
        * ``per_class``: {name: {"recall", "precision", "f1", "roc_auc", "support"}} with
          f1 = 2 TP / (2 TP + FP + FN) of that class (None when the class is neither present
          nor predicted), roc_auc one-vs-rest, support the number of samples of the class;
        * ``macro_recall``, ``macro_precision``, ``macro_f1``, ``macro_roc_auc``: the means
          over the classes (None when a class's value is undefined);
        * ``confusion_matrix``: {"labels", "rows": "actual", "columns": "predicted", "matrix"},
          K x K, as in :func:`classification_report`.

    Examples
    --------
    >>> y_prob = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4]]
    >>> report = multiclass_report([0, 1, 2, 2], y_prob, ["A", "B", "C"])
    >>> report["accuracy"], report["per_class"]["C"]["recall"], report["confusion_matrix"]["matrix"]
    (0.75, 0.5, [[1, 0, 0], [0, 1, 0], [1, 0, 1]])
    """
    labels, prob, predicted = _classes_and_predictions(y_true, y_prob)
    n_classes = prob.shape[1]
    if isinstance(class_names, str) or len(class_names) != n_classes:
        shown = list(class_names) if not isinstance(class_names, str) else class_names
        raise ValueError(f"class_names must name the {n_classes} classes of y_prob, got {shown!r}")
    matrix = confusion_matrix(labels, predicted, labels=range(n_classes))
    recall, precision = per_class_recall(matrix), per_class_precision(matrix)
    # f1 = 2 TP / (2 TP + FN + FP) of class k: row k holds TP + FN, column k holds TP + FP
    f1 = [_ratio(2 * matrix[k, k], matrix[k].sum() + matrix[:, k].sum()) for k in range(n_classes)]
    aucs = roc_auc_one_vs_rest(labels, prob)
    return {
        "accuracy": _ratio(np.trace(matrix), matrix.sum()),
        "per_class": {
            str(name): {
                "recall": recall[k],
                "precision": precision[k],
                "f1": f1[k],
                "roc_auc": aucs[k],
                "support": int(matrix[k].sum()),
            }
            for k, name in enumerate(class_names)
        },
        "macro_recall": macro_average(recall),
        "macro_precision": macro_average(precision),
        "macro_f1": macro_average(f1),
        "macro_roc_auc": macro_average(aucs),
        "confusion_matrix": {
            "labels": [str(name) for name in class_names],
            "rows": "actual",
            "columns": "predicted",
            "matrix": matrix.tolist(),
        },
        "n_test": int(len(labels)),
    }
