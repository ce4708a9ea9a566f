"""Tests for minicnn.metrics: small cases worked on paper, then properties checked by hypothesis."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minicnn import metrics  # the K-class functions, beside the binary ones imported by name
from minicnn.metrics import (
    binary_accuracy,
    classification_report,
    confusion_matrix,
    format_metric,
    roc_auc,
    roc_curve,
)

PNEUMONIA, NORMAL = 0, 1


# ---------------------------------------------------------------------------
# Plain reference versions, written with loops so they are obviously right
# ---------------------------------------------------------------------------


def pairwise_auc(labels, scores, positive_label=1):
    """Mann-Whitney: the share of (positive, negative) pairs ranked right; ties count 1/2."""
    positives = [s for y, s in zip(labels, scores, strict=True) if y == positive_label]
    negatives = [s for y, s in zip(labels, scores, strict=True) if y != positive_label]
    credit = 0.0
    for p in positives:
        for n in negatives:
            if p > n:
                credit += 1.0
            elif p == n:
                credit += 0.5
    return credit / (len(positives) * len(negatives))


def loop_confusion_matrix(actual, predicted, labels):
    matrix = [[0] * len(labels) for _ in labels]
    for a, p in zip(actual, predicted, strict=True):
        matrix[labels.index(a)][labels.index(p)] += 1
    return matrix


# Samples as (label, score) pairs; scores come from a few values so that ties are common.
samples = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 12).map(lambda k: k / 12)),
    min_size=2,
    max_size=40,
)


def split(pairs):
    labels = np.array([y for y, _ in pairs])
    scores = np.array([s for _, s in pairs])
    return labels, scores


# ---------------------------------------------------------------------------
# binary_accuracy
# ---------------------------------------------------------------------------


def test_binary_accuracy_hand_case():
    y_true = [0, 1, 1, 0]
    y_prob = [0.2, 0.9, 0.4, 0.6]  # predicted 0, 1, 0, 1: two right
    assert binary_accuracy(y_true, y_prob) == 0.5


def test_binary_accuracy_accepts_keras_column_shape():
    y_true = np.array([[1.0], [0.0], [1.0]], dtype=np.float32)
    y_prob = np.array([[0.8], [0.1], [0.7]], dtype=np.float32)
    assert binary_accuracy(y_true, y_prob) == 1.0


def test_probability_at_the_threshold_is_predicted_zero():
    # The rule is prob > threshold (strict, as in Keras).
    assert binary_accuracy([0], [0.5]) == 1.0
    assert binary_accuracy([1], [0.5]) == 0.0
    assert binary_accuracy([1], [0.3], threshold=0.2) == 1.0


# ---------------------------------------------------------------------------
# confusion_matrix
# ---------------------------------------------------------------------------


def test_confusion_matrix_hand_case():
    actual = [0, 0, 0, 1, 1, 1, 1, 0]
    predicted = [0, 1, 0, 1, 1, 0, 1, 0]
    # Worked on paper: actual 0 -> predicted 0, 1, 0, 0 ; actual 1 -> predicted 1, 1, 0, 1
    expected = [[3, 1], [1, 3]]
    matrix = confusion_matrix(actual, predicted)
    assert matrix.tolist() == expected
    assert matrix.dtype == np.int64


def test_confusion_matrix_follows_the_order_of_labels():
    actual = [0, 0, 1]
    predicted = [0, 1, 1]
    assert confusion_matrix(actual, predicted, labels=(1, 0)).tolist() == [[1, 0], [1, 1]]


def test_confusion_matrix_with_three_labels():
    actual = [2, 0, 1, 2, 2]
    predicted = [2, 0, 2, 1, 2]
    expected = loop_confusion_matrix(actual, predicted, [0, 1, 2])
    assert confusion_matrix(actual, predicted, labels=(0, 1, 2)).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=50))
def test_confusion_matrix_matches_loop_and_sums_to_n(pairs):
    actual = [a for a, _ in pairs]
    predicted = [p for _, p in pairs]
    matrix = confusion_matrix(actual, predicted, labels=(0, 1, 2))
    assert matrix.tolist() == loop_confusion_matrix(actual, predicted, [0, 1, 2])
    assert matrix.sum() == len(pairs)


@settings(max_examples=60, deadline=None)
@given(samples)
def test_accuracy_is_trace_over_n(pairs):
    labels, prob = split(pairs)
    predicted = (prob > 0.5).astype(int)
    matrix = confusion_matrix(labels, predicted)
    assert binary_accuracy(labels, prob) == pytest.approx(np.trace(matrix) / len(labels))


# ---------------------------------------------------------------------------
# roc_curve and roc_auc
# ---------------------------------------------------------------------------


def test_perfect_and_inverted_classifiers():
    labels = [0, 0, 1, 1]
    assert roc_auc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_roc_curve_hand_case():
    labels = [1, 0, 1, 0]
    scores = [0.9, 0.7, 0.7, 0.1]  # a tie between a positive and a negative at 0.7
    fpr, tpr, thresholds = roc_curve(labels, scores)
    # threshold inf: nothing positive; 0.9: one TP; 0.7: both tied samples at once; 0.1: all.
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.7, 0.1])
    # Pairs (positive, negative): (0.9, 0.7) 1, (0.9, 0.1) 1, (0.7, 0.7) 1/2, (0.7, 0.1) 1 -> 3.5 / 4
    assert roc_auc(labels, scores) == pytest.approx(0.875)


def test_all_scores_tied_is_one_diagonal_step():
    fpr, tpr, thresholds = roc_curve([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3])
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0]
    assert roc_auc([0, 1, 0, 1], [0.3] * 4) == 0.5


def test_positive_label_zero_flips_the_question():
    labels = [0, 0, 1, 1]
    prob_normal = [0.1, 0.2, 0.8, 0.9]
    scores_pneumonia = 1 - np.array(prob_normal)
    assert roc_auc(labels, scores_pneumonia, positive_label=PNEUMONIA) == 1.0


@settings(max_examples=100, deadline=None)
@given(samples)
def test_roc_curve_shape(pairs):
    labels, scores = split(pairs)
    assume(0 < labels.sum() < len(labels))
    fpr, tpr, thresholds = roc_curve(labels, scores)
    assert (fpr[0], tpr[0]) == (0.0, 0.0)
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(thresholds) < 0)  # strictly decreasing: one point per distinct score
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert len(thresholds) == len(np.unique(scores)) + 1


@settings(max_examples=150, deadline=None)
@given(samples, st.sampled_from([0, 1]))
def test_roc_auc_equals_pairwise_count(pairs, positive_label):
    labels, scores = split(pairs)
    assume(0 < labels.sum() < len(labels))
    expected = pairwise_auc(labels.tolist(), scores.tolist(), positive_label)
    assert roc_auc(labels, scores, positive_label) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(samples)
def test_roc_auc_ignores_strictly_increasing_transforms(pairs):
    labels, scores = split(pairs)
    assume(0 < labels.sum() < len(labels))
    auc = roc_auc(labels, scores)
    assert roc_auc(labels, np.exp(3 * scores) - 7) == pytest.approx(auc, abs=1e-12)
    assert roc_auc(labels, scores**3 + 2 * scores) == pytest.approx(auc, abs=1e-12)


def test_roc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        roc_auc([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([0, 0], [0.2, 0.5])


def test_roc_rejects_non_finite_scores():
    with pytest.raises(ValueError, match="1 of 3"):
        roc_auc([0, 1, 1], [0.2, np.nan, 0.9])


# ---------------------------------------------------------------------------
# classification_report
# ---------------------------------------------------------------------------

# 4 Pneumonia and 6 Normal X-rays. With p = probability of Normal and threshold 0.5:
#   Pneumonia 0.1 0.2 0.4 -> predicted Pneumonia (TP = 3); 0.7 -> Normal (FN = 1)
#   Normal 0.3 -> Pneumonia (FP = 1); 0.6 0.8 0.9 0.95 0.55 -> Normal (TN = 5)
REPORT_LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
REPORT_PROB_NORMAL = [0.1, 0.2, 0.4, 0.7, 0.3, 0.6, 0.8, 0.9, 0.95, 0.55]


def test_report_hand_case_with_pneumonia_positive():
    report = classification_report(REPORT_LABELS, REPORT_PROB_NORMAL)
    assert report["positive_class"] == "Pneumonia"
    assert report["accuracy"] == pytest.approx(8 / 10)
    assert report["sensitivity"] == pytest.approx(3 / 4)  # TP / (TP + FN)
    assert report["specificity"] == pytest.approx(5 / 6)  # TN / (TN + FP)
    assert report["precision"] == pytest.approx(3 / 4)  # TP / (TP + FP)
    assert report["f1"] == pytest.approx(3 / 4)
    # Pairs where a Pneumonia X-ray has lower p than a Normal one: 6 + 6 + 5 + 3 = 20 of 24.
    assert report["roc_auc"] == pytest.approx(20 / 24)
    assert report["confusion_matrix"] == {
        "labels": ["Pneumonia", "Normal"],
        "rows": "actual",
        "columns": "predicted",
        "matrix": [[3, 1], [1, 5]],
    }
    assert report["n_test"] == 10
    assert report["threshold"] == 0.5


def test_report_with_normal_positive_swaps_sensitivity_and_specificity():
    report = classification_report(REPORT_LABELS, REPORT_PROB_NORMAL, positive_label=NORMAL)
    assert report["positive_class"] == "Normal"
    assert report["sensitivity"] == pytest.approx(5 / 6)
    assert report["specificity"] == pytest.approx(3 / 4)
    assert report["precision"] == pytest.approx(5 / 6)
    assert report["roc_auc"] == pytest.approx(20 / 24)  # the same ranking, seen from the other side


def test_report_is_json_serialisable_with_plain_python_types():
    prob = np.array(REPORT_PROB_NORMAL, dtype=np.float32).reshape(-1, 1)
    report = classification_report(np.array(REPORT_LABELS, dtype=np.float32), prob)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    for key in ("accuracy", "sensitivity", "specificity", "precision", "f1", "roc_auc", "threshold"):
        assert type(report[key]) is float, key
    assert type(report["n_test"]) is int
    assert all(type(count) is int for row in report["confusion_matrix"]["matrix"] for count in row)


def test_undefined_ratios_are_none_not_zero():
    # Everything predicted Normal: nothing predicted Pneumonia, so precision = TP / (TP + FP) = 0 / 0.
    report = classification_report([0, 1, 1], [0.9, 0.8, 0.7])
    assert report["precision"] is None
    assert report["sensitivity"] == 0.0  # the one Pneumonia X-ray was missed: defined, and bad
    assert report["f1"] == 0.0  # 2 TP / (2 TP + FP + FN) = 0 / 1: defined although precision is not
    assert report["specificity"] == 1.0


def test_one_pneumonia_image_has_no_specificity():
    # The case from issue 9: a test set of one Pneumonia X-ray has no negatives to be specific about.
    report = classification_report([0], [0.2])
    assert report["specificity"] is None
    assert report["sensitivity"] == 1.0 and report["precision"] == 1.0 and report["f1"] == 1.0
    assert report["roc_auc"] is None
    assert '"specificity": null' in json.dumps(report, allow_nan=False)


def test_only_normal_images_predicted_normal_leave_every_pneumonia_ratio_undefined():
    # No Pneumonia anywhere, actual or predicted: sensitivity, precision and F1 are all 0 / 0.
    report = classification_report([1, 1], [0.9, 0.8])
    assert report["sensitivity"] is None and report["precision"] is None and report["f1"] is None
    assert report["specificity"] == 1.0 and report["accuracy"] == 1.0


@settings(max_examples=100, deadline=None)
@given(samples)
def test_a_ratio_is_none_exactly_when_its_denominator_is_zero(pairs):
    labels, prob = split(pairs)
    report = classification_report(labels, prob)
    (tp, fn), (fp, tn) = report["confusion_matrix"]["matrix"]  # row 0 = actual Pneumonia, the positive class
    assert (report["sensitivity"] is None) == (tp + fn == 0)
    assert (report["specificity"] is None) == (tn + fp == 0)
    assert (report["precision"] is None) == (tp + fp == 0)
    assert (report["f1"] is None) == (tp + fp + fn == 0)
    if report["precision"] and report["sensitivity"]:  # both defined and non-zero: the harmonic mean
        harmonic = 2 * report["precision"] * report["sensitivity"] / (report["precision"] + report["sensitivity"])
        assert report["f1"] == pytest.approx(harmonic)
    json.dumps(report, allow_nan=False)


def test_format_metric_says_n_a_for_undefined():
    assert format_metric(0.92134) == "0.9213"
    assert format_metric(None) == "n/a"
    assert format_metric(1.0, digits=2) == "1.00"


def test_report_with_one_class_has_no_auc():
    report = classification_report([1, 1, 1], [0.9, 0.8, 0.2])
    assert report["roc_auc"] is None
    assert report["specificity"] == pytest.approx(2 / 3)
    json.dumps(report, allow_nan=False)


# ---------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y_true, prob, message",
    [
        ([0, 1, 1], [0.2, 0.3], "3 values but prob_normal has 2"),
        ([0, 2, 1, 3], [0.1, 0.2, 0.3, 0.4], "2 of 4 values"),
        ([0, 1, 1], [0.1, 1.5, -0.2], "2 of 3 values are outside"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "1 NaN"),
        ([np.nan, 1], [0.1, 0.3], "1 of 2 values"),
        ([], [], "empty"),
        (np.zeros((2, 2)), np.zeros((2, 2)), "shape"),
    ],
)
def test_report_rejects_bad_inputs(y_true, prob, message):
    with pytest.raises(ValueError, match=message):
        classification_report(y_true, prob)


def test_other_functions_reject_bad_inputs():
    with pytest.raises(ValueError, match="2 values but y_prob has 3"):
        binary_accuracy([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="outside"):
        binary_accuracy([0, 1], [0.1, 2.0])
    with pytest.raises(ValueError, match="1 of 3 values in y_pred are not in labels"):
        confusion_matrix([0, 1, 1], [0, 1, 5])
    with pytest.raises(ValueError, match="distinct"):
        confusion_matrix([0, 1], [0, 1], labels=(0, 0))
    with pytest.raises(ValueError, match="threshold"):
        classification_report([0, 1], [0.1, 0.9], threshold=1.5)
    with pytest.raises(ValueError, match="positive_label"):
        roc_auc([0, 1], [0.1, 0.9], positive_label=2)


# ---------------------------------------------------------------------------
# K classes
# ---------------------------------------------------------------------------

# Worked on paper: 3 classes, 8 samples. Predictions (argmax): 0, 0, 1, 1, 0, 2, 2, 0.
K_LABELS = [0, 0, 1, 1, 1, 2, 2, 2]
K_PROB = [
    [0.7, 0.2, 0.1],
    [0.5, 0.3, 0.2],
    [0.2, 0.6, 0.2],
    [0.1, 0.8, 0.1],
    [0.4, 0.35, 0.25],
    [0.1, 0.2, 0.7],
    [0.2, 0.3, 0.5],
    [0.6, 0.1, 0.3],
]


def test_the_k_class_report_worked_on_paper():
    report = metrics.multiclass_report(K_LABELS, K_PROB, ["Normal", "bacterial", "viral"])
    assert report["confusion_matrix"]["matrix"] == [[2, 0, 0], [1, 2, 0], [1, 0, 2]]
    assert report["accuracy"] == 6 / 8
    normal, bacterial, viral = (report["per_class"][name] for name in ("Normal", "bacterial", "viral"))
    assert (normal["recall"], normal["precision"], normal["support"]) == (1.0, 0.5, 2)
    assert (bacterial["recall"], bacterial["precision"]) == (2 / 3, 1.0)
    assert (viral["recall"], viral["precision"]) == (2 / 3, 1.0)
    assert normal["f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 0))
    assert report["macro_recall"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert report["macro_precision"] == pytest.approx((0.5 + 1 + 1) / 3)
    # one-vs-rest AUC of viral: its scores 0.7, 0.5, 0.3 against 0.1, 0.2, 0.2, 0.1, 0.25: the 0.3 ranks
    # above all five negatives too, so every pair is right
    assert viral["roc_auc"] == 1.0
    # Normal: positives 0.7, 0.5 against 0.2, 0.1, 0.4, 0.1, 0.2, 0.6: 0.7 beats 6, 0.5 beats 5 of 6
    assert normal["roc_auc"] == pytest.approx(11 / 12)
    json.dumps(report)  # plain Python numbers


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 30),
    k=st.integers(2, 5),
)
def test_k_class_metrics_agree_with_the_binary_ones_and_with_loops(seed, n, k):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    prob = rng.dirichlet(np.ones(k), n)
    predicted = prob.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted, labels=range(k))
    for a in range(k):  # the matrix, counted with a loop
        for b in range(k):
            assert matrix[a, b] == sum(1 for t, p in zip(labels, predicted, strict=True) if (t, p) == (a, b))
    one_hot = np.eye(k)[labels]
    assert metrics.categorical_accuracy(labels, prob) == metrics.categorical_accuracy(one_hot, prob)
    assert metrics.categorical_accuracy(labels, prob) == np.mean(labels == predicted)
    aucs = metrics.roc_auc_one_vs_rest(one_hot, prob)
    for c in range(k):
        present = 0 < (labels == c).sum() < n
        assert (aucs[c] is None) == (not present)
        if present:  # one-vs-rest is the binary AUC of "class c" against the rest
            assert aucs[c] == pytest.approx(pairwise_auc((labels == c).astype(int), prob[:, c]))
    recall = metrics.per_class_recall(matrix)
    assert all((r is None) == (c not in labels) for c, r in enumerate(recall))
    if k == 2:  # two classes: recall of class 1 is the binary sensitivity with 1 positive
        report = classification_report(labels, prob[:, 1], threshold=0.5, positive_label=1)
        if not np.any(prob[:, 1] == 0.5):  # argmax and p > 0.5 differ only on an exact tie
            assert report["sensitivity"] == recall[1]


def test_a_macro_average_is_undefined_when_a_class_s_value_is():
    """Class 2 is never predicted: its precision is undefined, so the macro precision is too, not a flattering mean."""
    report = metrics.multiclass_report([0, 1, 2], [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.6, 0.3, 0.1]], ["a", "b", "c"])
    assert report["per_class"]["c"]["precision"] is None and report["macro_precision"] is None
    assert report["per_class"]["c"]["recall"] == 0.0 and report["macro_recall"] == pytest.approx(2 / 3)
    assert metrics.macro_average([0.5, 1.0]) == 0.75 and metrics.macro_average([0.5, None]) is None


@pytest.mark.parametrize(
    "y_true, y_prob, message",
    [
        ([0, 3], [[0.5, 0.5], [0.5, 0.5]], r"y_true must hold class indices 0..1; 1 of 2 values do not \(e.g. \[3\]\)"),
        ([0, 1.5], [[0.5, 0.5], [0.5, 0.5]], r"class indices 0..1; 1 of 2 values do not \(e.g. \[1.5\]\)"),
        ([[1, 1], [0, 1]], [[0.5, 0.5], [0.5, 0.5]], r"must hold one-hot rows \(one 1, the rest 0\); 1 of 2 rows"),
        ([0, 1], [0.2, 0.8], r"y_prob must have shape \(N, K\) with N >= 1 and K >= 2 classes, got \(2,\)"),
        ([0, 1], [[0.2, 1.8], [0.5, 0.5]], r"y_prob must be probabilities in \[0, 1\]; 1 of 4 values"),
        ([0, 1, 1], [[0.2, 0.8], [0.5, 0.5]], "y_true has 3 values but y_prob has 2"),
    ],
)
def test_k_class_functions_reject_bad_inputs(y_true, y_prob, message):
    with pytest.raises(ValueError, match=message):
        metrics.categorical_accuracy(y_true, y_prob)


def test_the_report_needs_one_name_per_class():
    with pytest.raises(ValueError, match=r"class_names must name the 3 classes of y_prob, got \['a', 'b'\]"):
        metrics.multiclass_report(K_LABELS, K_PROB, ["a", "b"])
