"""A property of fit and predict: garbage in their arguments is refused by minicnn itself, or means its float32 value.

For random arguments (arrays of any shape and dtype, nested and ragged lists, scalars, strings,
None, NaN and inf), each call either

* raises a ValueError or TypeError raised by minicnn's own code (never one from inside NumPy), or
* returns the same result as the same call on ``np.asarray(argument, "float32")``.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn import layers

MINICNN_FOLDER = str(Path(mc.__file__).parent)
SHAPE = (3, 3, 1)


def fresh_model() -> mc.Sequential:
    model = mc.Sequential([layers.Flatten(input_shape=SHAPE), layers.Dense(1, activation="sigmoid")], seed=0)
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    return model


@st.composite
def arrays(draw, shape_of_one=SHAPE, labels=False, samples=None):
    """Arrays of a right or wrong shape, of many dtypes, with values that are sometimes NaN or inf."""
    samples = draw(st.integers(0, 4)) if samples is None else samples
    shape = draw(
        st.sampled_from(
            [
                (samples, *shape_of_one),
                (samples, *shape_of_one),  # the right shape, more often
                (samples, *shape_of_one),
                (samples,),
                (samples,),
                (samples, 1),
                (samples, 2),
                (samples, 3, 3),
                (samples, 3, 3, 2),
                (),
            ]
        )
    )
    dtype = draw(
        st.sampled_from(["float64", "float32", "float32", "int64", "uint8", "bool", "complex64", "str", "object"])
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if labels:
        values = rng.integers(0, 2, size=shape).astype("float64")
        if draw(st.booleans()):
            values = values * draw(st.sampled_from([0.5, 2.0, -1.0]))
    else:
        values = rng.uniform(-10, 10, size=shape)
    values = np.asarray(values)  # shape () gives a NumPy scalar, whose astype(object) is a bare float
    if values.size and draw(st.integers(0, 3)) == 0:
        values.flat[rng.integers(values.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300]))
    if dtype == "str":
        return values.astype(str)
    if dtype == "object":
        return values.astype(object)
    with np.errstate(invalid="ignore", over="ignore"):
        return values.astype(dtype)


def garbage(labels=False, samples=None):
    """An argument: an array, the nested lists it becomes, a ragged list, a scalar, a str, None or a dict."""
    return st.one_of(
        arrays(labels=labels, samples=samples),
        arrays(labels=labels, samples=samples).map(lambda array: array.tolist()),
        st.just([[0.0, 1.0], [2.0]]),
        st.sampled_from([None, "x", 3, 2.5, True, {"a": 1}, float("nan")]),
    )


def raised_by_minicnn(error: BaseException) -> bool:
    """True when the innermost frame of ``error``'s traceback lies in minicnn's own files."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(MINICNN_FOLDER)


def as_float32(value):
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(value, "float32")


@settings(max_examples=150, deadline=None)
@given(x=garbage())
def test_predict_refuses_garbage_itself_or_predicts_its_float32_value(x):
    try:
        result = fresh_model().predict(x)
    except (ValueError, TypeError) as error:
        assert raised_by_minicnn(error), "".join(traceback.format_exception(error))
        event("refused")
        return
    event("returned")
    np.testing.assert_array_equal(result, fresh_model().predict(as_float32(x)))


@st.composite
def fit_arguments(draw):
    """x and y: garbage, or half the time arguments that fit can train on, as arrays or lists."""
    samples = draw(st.integers(1, 4))
    if draw(st.booleans()):
        return draw(garbage(samples=samples)), draw(garbage(labels=True, samples=samples))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-10, 10, size=(samples, *SHAPE)).astype(draw(st.sampled_from(["float64", "float32", "int64"])))
    y = rng.integers(0, 2, size=draw(st.sampled_from([(samples,), (samples, 1)]))).astype(
        draw(st.sampled_from(["float32", "int64", "uint8", "bool"]))
    )
    return (x.tolist() if draw(st.booleans()) else x), (y.tolist() if draw(st.booleans()) else y)


@settings(max_examples=200, deadline=None)
@given(arguments=fit_arguments())
def test_fit_refuses_garbage_itself_or_trains_on_its_float32_value(arguments):
    x, y = arguments
    model = fresh_model()
    try:
        history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    except (ValueError, TypeError) as error:
        assert raised_by_minicnn(error), "".join(traceback.format_exception(error))
        event("refused")
        return
    event("returned")
    reference = fresh_model()
    expected = reference.fit(as_float32(x), as_float32(y), batch_size=2, epochs=1, verbose=0)
    assert history.history["loss"] == expected.history["loss"]
    for mine, theirs in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
