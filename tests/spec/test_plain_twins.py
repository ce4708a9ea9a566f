"""Every fast layer, loss and optimiser equals its plain twin in minicnn.plain, and the plain track is right.

Two kinds of checks:

* twins: each fast forward and backward, called directly and inside a model that owns the
  memory (kept buffers, in-place activation gradients, the ReLU folded into the pool), gives the
  numbers of its plain twin. Bit for bit where both add the same terms in the same order;
  otherwise within the textbook bound on the rounding of a sum (``assert_within_rounding``);
* proofs: every plain backward equals float64 central differences of its forward, and the
  plain optimisers follow their formulas; so the plain track is right on its own, not only
  equal to the fast one.

Everything runs on this machine's NumPy and BLAS and compares with numbers computed here:
nothing is compared with figures written on another machine. (im2col against the plain
im2col and col2im_matmul against the plain col2im are in test_im2col.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import distinct_values

import minicnn as mc
from minicnn import backend, layers, losses, optimizers, plain
from minicnn.gradcheck import numerical_gradient, relative_error
from minicnn.layers import conv as conv_layer
from minicnn.layers.base import model_owns_memory


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Build the layers in each float type (the fast code must equal its twin in both)."""
    previous = backend.default_dtype()
    backend.set_default_dtype(request.param)
    yield request.param
    backend.set_default_dtype(previous)


def assert_within_rounding(actual, expected, magnitude, terms):
    """|actual - expected| <= 2 (terms + 1) eps * magnitude, elementwise.

    Why this bound: a sum of K rounded products, added in any order (any blocking or FMA a
    BLAS kernel uses), differs from the exact sum by at most about (K + 1) u * sum|terms|,
    u = eps / 2 (Higham, "Accuracy and Stability of Numerical Algorithms", section 3.1). Two
    such computations differ from each other by at most twice that, hence 2 (K + 1) (eps / 2)
    * 2 = 2 (K + 1) eps with a factor 2 to spare. ``magnitude`` is sum|terms| for each
    element, computed by running the plain function on absolute values.
    """
    eps = np.finfo(np.asarray(actual).dtype).eps
    bound = 2 * (terms + 1) * eps * np.asarray(magnitude) + np.finfo(np.asarray(actual).dtype).tiny
    error = np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(expected, dtype=np.float64))
    assert np.all(error <= bound), f"max error {error.max():.3g} > bound {bound.max():.3g} ({terms} terms)"


def host(array):
    return backend.to_numpy(array).copy()


def in_a_model(layer, x, dy, training=False, steps=2):
    """(y, dL/dx, grads) of ``layer`` inside a Sequential that owns the memory, as train_on_batch runs it.

    An Identity layer goes first, so the layer under test still computes dL/dx (a
    model's first layer does not); the layer keeps the parameters it had. Two steps: the
    second writes into the buffers kept from the first.
    """
    params = {name: host(value) for name, value in layer.params.items()}
    model = mc.Sequential([layers.Identity(input_shape=x.shape[1:]), layer], seed=0)  # builds the layer again
    for name, value in params.items():
        layer.params[name][...] = value  # the parameters the plain twin is given
    for _ in range(steps):
        with model_owns_memory(model.layers):
            y = host(model.forward(x, training=training))
            dx = host(model.backward(dy.copy()))  # the model owns dy: it may write into it
    return y, dx, {name: host(grad) for name, grad in layer.grads.items()}


# ---- Conv2D ----------------------------------------------------------------------------

conv_cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 2),
        "height": st.integers(1, 7),
        "width": st.integers(1, 7),
        "channels": st.integers(1, 3),
        "filters": st.integers(1, 3),
        "kernel": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "padding": st.sampled_from(["valid", "same"]),
        "seed": st.integers(0, 2**16),
    }
).filter(lambda c: c["padding"] == "same" or (c["kernel"][0] <= c["height"] and c["kernel"][1] <= c["width"]))


def conv_arrays(case, dtype):
    """x, kernel, bias and an upstream gradient dz for a case, as NumPy arrays of ``dtype``."""
    rng = np.random.default_rng(case["seed"])
    layer = layers.Conv2D(case["filters"], case["kernel"], strides=case["strides"], padding=case["padding"])
    out_shape = layer.build((case["height"], case["width"], case["channels"]), rng)
    layer.params["bias"][...] = rng.normal(size=case["filters"])
    x = rng.normal(size=(case["batch"], case["height"], case["width"], case["channels"])).astype(dtype)
    dz = rng.normal(size=(case["batch"], *out_shape)).astype(dtype)
    return layer, x, host(layer.params["kernel"]).astype(dtype), host(layer.params["bias"]).astype(dtype), dz


def windows_per_pixel(kernel, strides):
    """The most windows that cover one input pixel: ceil(KH/SH) * ceil(KW/SW)."""
    return -(-kernel[0] // strides[0]) * -(-kernel[1] // strides[1])


def assert_conv_equals_plain_im2col(case, z, dx, dw, db, x, w, b, dz):
    """The fast results against plain.conv2d_*_im2col: z, dw bit for bit; db bit for bit for F >= 2; dx in rounding."""
    strides, padding = case["strides"], case["padding"]
    z_plain, cache = plain.conv2d_forward_im2col(x, w, b, strides, padding)
    dx_plain, dw_plain, db_plain = plain.conv2d_backward_im2col(dz, cache)
    # z = cols @ W + b and dW = cols.T @ dz: the same matrix products, on the same matrices, as the fast layer.
    np.testing.assert_array_equal(z, z_plain)
    np.testing.assert_array_equal(dw, dw_plain)
    if case["filters"] >= 2:  # einsum("mf->f") adds row after row, as sum(axis=(0, 1, 2)) does for F >= 2
        np.testing.assert_array_equal(db, db_plain)
    else:  # for F = 1, sum() adds pairwise, einsum one after another: M terms
        assert_within_rounding(db, db_plain, np.abs(dz).sum(axis=(0, 1, 2)), dz[..., 0].size)
    # dx: the fast col2im_matmul adds kernel offset by offset, the plain col2im window by window, so a
    # pixel's terms (F products per covering window) arrive in another order.
    _, abs_cache = plain.conv2d_forward_im2col(np.abs(x), np.abs(w), np.abs(b), strides, padding)
    magnitude = plain.conv2d_backward_im2col(np.abs(dz), abs_cache)[0]
    assert_within_rounding(dx, dx_plain, magnitude, case["filters"] * windows_per_pixel(case["kernel"], strides))


@settings(max_examples=60)
@given(case=conv_cases)
def test_conv2d_called_directly_equals_plain_im2col(case, dtype):
    layer, x, w, b, dz = conv_arrays(case, dtype)
    z = host(layer.forward(x))
    dx = host(layer.backward(dz))
    assert_conv_equals_plain_im2col(case, z, dx, host(layer.grads["kernel"]), host(layer.grads["bias"]), x, w, b, dz)


@settings(max_examples=20)
@given(case=conv_cases)
def test_conv2d_in_a_model_equals_plain_im2col(case, dtype):
    layer, x, w, b, dz = conv_arrays(case, dtype)
    z, dx, grads = in_a_model(layer, x, dz)
    assert_conv_equals_plain_im2col(case, z, dx, grads["kernel"], grads["bias"], x, w, b, dz)


def test_conv2d_in_chunks_equals_plain_im2col_within_rounding(monkeypatch, dtype):
    """A workspace too small for two images: the fast layer runs one image per product, the plain one all at once.

    Other matrix shapes may take other BLAS kernels, and dW adds the chunks' products one
    after another, so only the rounding bound holds, not bit equality.
    """
    monkeypatch.setattr(conv_layer, "WORKSPACE_BYTES", 1)  # chunk_size() is then one image
    case = {"batch": 3, "height": 6, "width": 5, "channels": 2, "filters": 3, "kernel": (3, 2), "strides": (1, 2),
            "padding": "same", "seed": 1}  # fmt: skip
    layer, x, w, b, dz = conv_arrays(case, dtype)
    assert layer.chunk_size(len(x)) == 1
    z, dx = host(layer.forward(x)), host(layer.backward(dz))
    z_plain, cache = plain.conv2d_forward_im2col(x, w, b, case["strides"], case["padding"])
    dx_plain, dw_plain, _ = plain.conv2d_backward_im2col(dz, cache)
    abs_z, abs_cache = plain.conv2d_forward_im2col(np.abs(x), np.abs(w), np.abs(b), case["strides"], case["padding"])
    abs_dx, abs_dw, _ = plain.conv2d_backward_im2col(np.abs(dz), abs_cache)
    assert_within_rounding(z, z_plain, abs_z, 3 * 2 * 2)
    assert_within_rounding(host(layer.grads["kernel"]), dw_plain, abs_dw, dz[..., 0].size)
    assert_within_rounding(dx, dx_plain, abs_dx, 3 * windows_per_pixel((3, 2), (1, 2)))


@settings(max_examples=15)
@given(case=conv_cases)
def test_plain_conv2d_loops_equal_plain_im2col(case, float64):
    _, x, w, b, dz = conv_arrays(case, "float64")
    strides, padding = case["strides"], case["padding"]
    z_loops, loops_cache = plain.conv2d_forward_loops(x, w, b, strides, padding)
    z_cols, cols_cache = plain.conv2d_forward_im2col(x, w, b, strides, padding)
    abs_z, abs_cache = plain.conv2d_forward_loops(np.abs(x), np.abs(w), np.abs(b), strides, padding)
    terms = int(np.prod(w.shape[:3]))  # KH*KW*C products and the bias, added in another order than BLAS does
    assert_within_rounding(z_cols, z_loops, abs_z, terms)
    grads_loops = plain.conv2d_backward_loops(dz, loops_cache)
    grads_cols = plain.conv2d_backward_im2col(dz, cols_cache)
    abs_dx, abs_dw, _ = plain.conv2d_backward_loops(np.abs(dz), abs_cache)
    assert_within_rounding(grads_cols[0], grads_loops[0], abs_dx, case["filters"] * w.shape[0] * w.shape[1])
    assert_within_rounding(grads_cols[1], grads_loops[1], abs_dw, dz[..., 0].size)
    np.testing.assert_array_equal(grads_cols[2], grads_loops[2])  # both dz.sum(axis=(0, 1, 2))


def test_conv2d_with_its_relu_folded_into_the_pool_equals_plain_conv_relu_pool(dtype):
    """The study's pattern in the fast mode: Conv2D(relu) -> MaxPool2D, the ReLU folded into the pool."""
    rng = np.random.default_rng(3)
    conv, pool = layers.Conv2D(4, 3, activation="relu"), layers.MaxPool2D(2)
    model = mc.Sequential([layers.Identity(input_shape=(9, 9, 2)), conv, pool], seed=1)
    conv.params["bias"][...] = rng.normal(size=4)
    x = rng.integers(-2, 3, size=(3, 9, 9, 2)).astype(dtype)  # integers: exact ties and zeros in the pool
    w, b = host(conv.params["kernel"]), host(conv.params["bias"])
    dy = rng.normal(size=(3, 3, 3, 4)).astype(dtype)
    for _ in range(2):
        with model_owns_memory(model.layers):
            y = host(model.forward(x, training=True))
            dx = host(model.backward(dy.copy()))
    z, conv_cache = plain.conv2d_forward_im2col(x, w, b)
    a, relu_cache = plain.relu_forward(z)
    y_plain, pool_cache = plain.max_pool_forward(a, (2, 2), (2, 2))
    dz = plain.relu_backward(plain.max_pool_backward(dy, pool_cache), relu_cache)
    dx_plain, dw_plain, db_plain = plain.conv2d_backward_im2col(dz, conv_cache)
    np.testing.assert_array_equal(y, y_plain)  # relu(max(a, b, ...)) = max(0, a, b, ...), exactly
    np.testing.assert_array_equal(host(conv.grads["kernel"]), dw_plain)
    np.testing.assert_array_equal(host(conv.grads["bias"]), db_plain)
    abs_cache = plain.conv2d_forward_im2col(np.abs(x), np.abs(w), np.abs(b))[1]
    assert_within_rounding(dx, dx_plain, plain.conv2d_backward_im2col(np.abs(dz), abs_cache)[0], 4 * 9)


# ---- MaxPool2D -------------------------------------------------------------------------

pool_cases = st.fixed_dictionaries(
    {
        "batch": st.integers(1, 2),
        "height": st.integers(1, 8),
        "width": st.integers(1, 8),
        "channels": st.integers(1, 3),
        "pool": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "strides": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "seed": st.integers(0, 2**16),
        "in_a_model": st.booleans(),
    }
).filter(lambda c: c["pool"][0] <= c["height"] and c["pool"][1] <= c["width"])


@settings(max_examples=80)
@given(case=pool_cases)
def test_max_pool_equals_plain_with_ties(case, dtype):
    rng = np.random.default_rng(case["seed"])
    layer = layers.MaxPool2D(case["pool"], strides=case["strides"])
    shape = (case["batch"], case["height"], case["width"], case["channels"])
    out_shape = layer.build(shape[1:])
    x = rng.integers(-2, 3, size=shape).astype(dtype)  # few values: many ties, first winner takes all
    dy = rng.normal(size=(case["batch"], *out_shape)).astype(dtype)
    if case["in_a_model"]:
        y, dx, _ = in_a_model(layer, x, dy)
    else:
        y, dx = host(layer.forward(x)), host(layer.backward(dy))
    y_plain, cache = plain.max_pool_forward(x, case["pool"], case["strides"])
    dx_plain = plain.max_pool_backward(dy, cache)
    np.testing.assert_array_equal(y, y_plain)  # a max rounds nothing
    if all(s >= p for s, p in zip(case["strides"], case["pool"], strict=True)):
        np.testing.assert_array_equal(dx, dx_plain)  # windows never share an element: one term per pixel
    else:  # overlapping windows: a shared winner gets a sum, added offset by offset vs window by window
        magnitude = plain.max_pool_backward(np.abs(dy), cache)
        assert_within_rounding(dx, dx_plain, magnitude, windows_per_pixel(case["pool"], case["strides"]))


# ---- Dense, Flatten, Dropout, ReLU, Sigmoid: elementwise or one product each, bit for bit -------


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
@pytest.mark.parametrize("where", ["direct", "model"])
def test_dense_equals_plain(activation, where, dtype):
    rng = np.random.default_rng(4)
    layer = layers.Dense(5, activation=activation)
    layer.build((7,), rng)
    layer.params["bias"][...] = rng.normal(size=5)
    x, dy = rng.normal(size=(6, 7)).astype(dtype), rng.normal(size=(6, 5)).astype(dtype)
    w, b = host(layer.params["kernel"]), host(layer.params["bias"])
    if where == "model":
        y, dx, grads = in_a_model(layer, x, dy)
    else:
        y, dx = host(layer.forward(x)), host(layer.backward(dy))
        grads = {name: host(grad) for name, grad in layer.grads.items()}
    z, cache = plain.dense_forward(x, w, b)
    forward, backward = {
        None: (lambda z: (z, None), lambda dy, cache: dy),
        "relu": (plain.relu_forward, plain.relu_backward),
        "sigmoid": (plain.sigmoid_forward, plain.sigmoid_backward),
        "tanh": (plain.tanh_forward, plain.tanh_backward),
        "softmax": (plain.softmax_forward, plain.softmax_backward),
    }[activation]
    y_plain, activation_cache = forward(z)
    dx_plain, dw_plain, db_plain = plain.dense_backward(backward(dy, activation_cache), cache)
    for fast, twin in [(y, y_plain), (dx, dx_plain), (grads["kernel"], dw_plain), (grads["bias"], db_plain)]:
        np.testing.assert_array_equal(fast, twin)  # the same products and sums, in the same order


@pytest.mark.parametrize("where", ["direct", "model"])
def test_flatten_relu_and_sigmoid_layers_equal_plain(where, dtype):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 4, 2, 3)).astype(dtype)
    x[0, 0, 0] = 0.0  # ReLU's kink: the derivative there is 0 in both
    cases = [
        (layers.Flatten(), plain.flatten_forward, plain.flatten_backward, (3, 24)),
        (layers.ReLU(), plain.relu_forward, plain.relu_backward, x.shape),
        (layers.Sigmoid(), plain.sigmoid_forward, plain.sigmoid_backward, x.shape),
        (layers.Tanh(), plain.tanh_forward, plain.tanh_backward, x.shape),
        (layers.Softmax(), plain.softmax_forward, plain.softmax_backward, x.shape),  # over the last axis (C)
    ]
    for layer, forward, backward, out_shape in cases:
        layer.build(x.shape[1:])
        dy = rng.normal(size=out_shape).astype(dtype)
        if where == "model":
            y, dx, _ = in_a_model(layer, x, dy)
        else:
            y, dx = host(layer.forward(x)), host(layer.backward(dy))
        y_plain, cache = forward(x)
        np.testing.assert_array_equal(y, y_plain, err_msg=layer.describe())
        np.testing.assert_array_equal(dx, backward(dy, cache), err_msg=layer.describe())


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5])
@pytest.mark.parametrize("where", ["direct", "model"])
def test_dropout_equals_plain_with_the_same_mask(rate, where, dtype):
    rng = np.random.default_rng(6)
    layer = layers.Dropout(rate, seed=11)
    layer.build((40,))
    x, dy = rng.normal(size=(5, 40)).astype(dtype), rng.normal(size=(5, 40)).astype(dtype)
    if where == "model":
        y, dx, _ = in_a_model(layer, x, dy, training=True, steps=1)
    else:
        y, dx = host(layer.forward(x, training=True)), host(layer.backward(dy))
    uniform = backend.to_numpy(backend.random_uniform(x.shape, seed=(11, 0), dtype=dtype))  # the first call's
    y_plain, cache = plain.dropout_forward(x, rate, plain.dropout_mask(x.shape, rate, uniform))
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_array_equal(dx, plain.dropout_backward(dy, cache))
    # At inference both are the identity.
    np.testing.assert_array_equal(host(layer.forward(x, training=False)), x)


# ---- the loss ---------------------------------------------------------------------------


def test_binary_crossentropy_equals_plain(dtype):
    rng = np.random.default_rng(7)
    p = rng.uniform(0, 1, size=(12, 1)).astype(dtype)
    p[:3, 0] = [0.0, 1.0, 1e-9]  # clipped: finite loss, zero gradient
    y = (rng.uniform(size=(12, 1)) < 0.5).astype(dtype)
    loss = losses.BinaryCrossentropy()
    value = host(loss.forward(p, y))
    value_plain, cache = plain.binary_cross_entropy_forward(p, y)
    np.testing.assert_array_equal(value, value_plain)
    np.testing.assert_array_equal(host(loss.backward()), plain.binary_cross_entropy_backward(1.0, cache))
    np.testing.assert_array_equal(
        host(loss.gradient_before_sigmoid()), plain.sigmoid_binary_cross_entropy_backward(1.0, cache)
    )
    z = rng.normal(scale=30, size=(12, 1)).astype(dtype)  # large logits: exp(-|z|) never overflows
    logits = losses.BinaryCrossentropy(from_logits=True)
    value_plain, cache = plain.binary_cross_entropy_logits_forward(z, y)
    np.testing.assert_array_equal(host(logits.forward(z, y)), value_plain)
    np.testing.assert_array_equal(host(logits.backward()), plain.binary_cross_entropy_logits_backward(1.0, cache))


# ---- the optimisers ---------------------------------------------------------------------


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_equals_plain(momentum, dtype):
    rng = np.random.default_rng(8)
    w = rng.normal(size=(4, 3)).astype(dtype)
    fast = optimizers.SGD(learning_rate=0.05, momentum=momentum)
    w_fast, w_plain, velocity = w.copy(), w.copy(), None
    for _ in range(4):
        dw = rng.normal(size=w.shape).astype(dtype)
        fast.step([("w", w_fast, dw)])
        w_plain, velocity = plain.sgd(w_plain, dw, velocity, learning_rate=0.05, momentum=momentum)
        np.testing.assert_array_equal(w_fast, w_plain)  # elementwise, the same operations in the same order


@pytest.mark.parametrize("size", [7, optimizers.CACHE_BLOCK + 1001])  # one block; several blocks and threads
def test_adam_equals_plain(size, dtype):
    rng = np.random.default_rng(9)
    w = rng.normal(size=size).astype(dtype)
    fast = optimizers.Adam(learning_rate=0.01)
    w_fast, w_plain = w.copy(), w.copy()
    m = v = np.zeros_like(w)
    for t in range(1, 4):
        dw = rng.normal(size=size).astype(dtype)
        fast.step([("w", w_fast, dw)])
        w_plain, m, v = plain.adam(w_plain, dw, m, v, t, learning_rate=0.01)
        np.testing.assert_array_equal(w_fast, w_plain)  # elementwise; blocks and threads change no order


# ---- the plain track is right on its own: float64 central differences ------------------


def check_backward(forward, backward, inputs, seed=0, tolerance=1e-7):
    """Compare ``backward(g, cache)`` with central differences of L = sum(forward(*inputs) * g).

    ``backward`` returns one gradient per input (a single array for one input).
    """
    out, cache = forward(*inputs)
    g = np.random.default_rng(seed).standard_normal(np.shape(out))
    analytic = backward(g, cache)
    analytic = analytic if isinstance(analytic, tuple) else (analytic,)
    for index, (array, gradient) in enumerate(zip(inputs, analytic, strict=True)):
        numeric = numerical_gradient(lambda: float((forward(*inputs)[0] * g).sum()), array)
        error = relative_error(gradient, numeric)
        assert error < tolerance, f"input {index}: relative error {error:.2e}"


@settings(max_examples=10)
@given(case=conv_cases)
def test_plain_conv2d_backward_is_the_derivative(case):
    _, x, w, b, _ = conv_arrays(case, "float64")
    options = (case["strides"], case["padding"])
    check_backward(
        lambda x, w, b: plain.conv2d_forward_im2col(x, w, b, *options), plain.conv2d_backward_im2col, (x, w, b)
    )


def test_plain_conv2d_loops_backward_is_the_derivative():
    rng = np.random.default_rng(10)
    x, w, b = rng.normal(size=(2, 5, 4, 2)), rng.normal(size=(3, 2, 2, 3)), rng.normal(size=3)
    for strides, padding in [((1, 1), "valid"), ((2, 1), "same")]:
        check_backward(
            lambda x, w, b, s=strides, p=padding: plain.conv2d_forward_loops(x, w, b, s, p),
            plain.conv2d_backward_loops,
            (x, w, b),
        )


@settings(max_examples=20)
@given(case=pool_cases, data=st.data())
def test_plain_max_pool_backward_is_the_derivative(case, data):
    shape = (case["batch"], case["height"], case["width"], case["channels"])
    x = data.draw(distinct_values(shape))  # no ties: the max is differentiable
    options = (case["pool"], case["strides"])
    check_backward(lambda x: plain.max_pool_forward(x, *options), plain.max_pool_backward, (x,))


def test_plain_elementwise_and_dense_backwards_are_the_derivatives():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4, 3, 2))
    x_away_from_zero = x + np.sign(x) * 0.01  # ReLU is not differentiable at 0
    mask = rng.uniform(size=x.shape) >= 0.4
    check_backward(
        plain.dense_forward,
        plain.dense_backward,
        (rng.normal(size=(4, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)),
    )
    check_backward(plain.flatten_forward, plain.flatten_backward, (x.copy(),))
    check_backward(lambda x: plain.dropout_forward(x, 0.4, mask), plain.dropout_backward, (x.copy(),))
    check_backward(plain.relu_forward, plain.relu_backward, (x_away_from_zero,))
    check_backward(plain.sigmoid_forward, plain.sigmoid_backward, (x.copy(),))


def test_plain_losses_backwards_are_the_derivatives():
    rng = np.random.default_rng(12)
    p, y = rng.uniform(0.05, 0.95, size=(6, 1)), (rng.uniform(size=(6, 1)) < 0.5).astype(float)
    z = rng.normal(scale=3, size=(6, 1))
    check_backward(lambda p: plain.binary_cross_entropy_forward(p, y), plain.binary_cross_entropy_backward, (p,))
    check_backward(
        lambda z: plain.binary_cross_entropy_logits_forward(z, y), plain.binary_cross_entropy_logits_backward, (z,)
    )

    # (p - y) / N is the derivative of the loss of sigmoid(z) with respect to z.
    def through_sigmoid(z):
        _, cache = plain.binary_cross_entropy_forward(plain.sigmoid(z), y)
        return plain.binary_cross_entropy_forward(plain.sigmoid(z), y)[0], cache

    check_backward(through_sigmoid, plain.sigmoid_binary_cross_entropy_backward, (z,))
    # From logits and from probabilities it is one loss.
    np.testing.assert_allclose(
        plain.binary_cross_entropy_logits_forward(z, y)[0], plain.binary_cross_entropy_forward(plain.sigmoid(z), y)[0]
    )


def test_plain_col2im_is_the_adjoint_of_im2col():
    """<im2col(x), c> = <x, col2im(c)>: col2im is the transpose of the linear map im2col."""
    rng = np.random.default_rng(13)
    x = rng.normal(size=(2, 7, 6, 3))
    cols = plain.im2col(x, (3, 2), (2, 1))
    c = rng.normal(size=cols.shape)
    np.testing.assert_allclose((cols * c).sum(), (x * plain.col2im(c, x.shape, (2, 1))).sum(), rtol=1e-12)


def test_plain_optimisers_follow_their_formulas():
    rng = np.random.default_rng(14)
    w, g = rng.normal(size=5), rng.normal(size=5)
    # SGD without momentum is w - lr * g; with a constant gradient, the velocity after k steps is
    # -lr * g * (1 - momentum**k) / (1 - momentum), a geometric series.
    np.testing.assert_allclose(plain.sgd(w, g, learning_rate=0.1)[0], w - 0.1 * g, rtol=1e-15)
    velocity = None
    for _ in range(6):
        _, velocity = plain.sgd(w, g, velocity, learning_rate=0.1, momentum=0.5)
    np.testing.assert_allclose(velocity, -0.1 * g * (1 - 0.5**6) / (1 - 0.5), rtol=1e-14)
    # Keras's Adam is the paper's with eps_hat = eps / sqrt(1 - beta_2**t).
    m = v = np.zeros(5)
    w_keras, w_paper, m_paper, v_paper = w.copy(), w.copy(), m.copy(), v.copy()
    for t in range(1, 5):
        g = rng.normal(size=5)
        w_keras, m, v = plain.adam(w_keras, g, m, v, t, learning_rate=0.01, epsilon=1e-3)
        m_paper, v_paper = 0.9 * m_paper + 0.1 * g, 0.999 * v_paper + 0.001 * g**2
        m_hat, v_hat = m_paper / (1 - 0.9**t), v_paper / (1 - 0.999**t)
        w_paper = w_paper - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-3 / np.sqrt(1 - 0.999**t))
        np.testing.assert_allclose(w_keras, w_paper, rtol=1e-13)
    # The first step moves every weight by about lr against the sign of its gradient.
    g = np.array([1.0, -2.0, 0.5, -0.3, 3.0])
    w_first, _, _ = plain.adam(w, g, np.zeros(5), np.zeros(5), 1, learning_rate=0.01)
    np.testing.assert_allclose(w - w_first, 0.01 * np.sign(g), rtol=1e-4)


# ---- everything together: one training step of the study's kind of network -------------


def test_a_training_step_in_the_fast_mode_equals_the_plain_track_bit_for_bit(dtype):
    """Conv2D(relu) -> MaxPool2D -> Flatten -> Dropout -> Dense(relu) -> Dense(sigmoid), BCE, Adam; three steps.

    Every piece is bit for bit with its twin here: the batch fits one workspace chunk, F >= 2
    for the conv's bias, and the first layer computes no dL/dx (the one within-rounding part).
    """
    rng = np.random.default_rng(15)
    model = mc.Sequential(
        [
            layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(6, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=3,
    )
    conv, _, _, dropout, hidden, last = model.layers
    loss, adam = losses.BinaryCrossentropy(), optimizers.Adam(learning_rate=0.01)
    w = {name: host(value) for name, value, _ in model.parameters()}  # the plain track's own copies
    m = {name: np.zeros_like(value) for name, value in w.items()}
    v = {name: np.zeros_like(value) for name, value in w.items()}
    for t in range(1, 4):
        x, y = rng.uniform(size=(5, 8, 8, 1)).astype(dtype), (rng.uniform(size=(5, 1)) < 0.5).astype(dtype)
        uniform = backend.to_numpy(backend.random_uniform((5, 36), seed=(dropout.seed, dropout.calls), dtype=dtype))
        with model_owns_memory(model.layers):  # as train_on_batch runs it
            loss.forward(model.forward(x, training=True), y)
            model.backward(loss.gradient_before_sigmoid(), from_dz=True)
            adam.step(model.parameters())
        # The same step on the plain track.
        z1, conv_cache = plain.conv2d_forward_im2col(x, w["conv2d/kernel"], w["conv2d/bias"])
        a1, relu1 = plain.relu_forward(z1)
        a2, pool_cache = plain.max_pool_forward(a1)
        a3, flat_cache = plain.flatten_forward(a2)
        a4, drop_cache = plain.dropout_forward(a3, 0.5, plain.dropout_mask(a3.shape, 0.5, uniform))
        z5, dense5 = plain.dense_forward(a4, w["dense/kernel"], w["dense/bias"])
        a5, relu5 = plain.relu_forward(z5)
        z6, dense6 = plain.dense_forward(a5, w["dense_1/kernel"], w["dense_1/bias"])
        p, sigmoid_cache = plain.sigmoid_forward(z6)
        _, loss_cache = plain.binary_cross_entropy_forward(p, y)
        grads = {}
        dz6 = plain.sigmoid_binary_cross_entropy_backward(1.0, loss_cache)
        da5, grads["dense_1/kernel"], grads["dense_1/bias"] = plain.dense_backward(dz6, dense6)
        da4, grads["dense/kernel"], grads["dense/bias"] = plain.dense_backward(plain.relu_backward(da5, relu5), dense5)
        da2 = plain.flatten_backward(plain.dropout_backward(da4, drop_cache), flat_cache)
        dz1 = plain.relu_backward(plain.max_pool_backward(da2, pool_cache), relu1)
        _, grads["conv2d/kernel"], grads["conv2d/bias"] = plain.conv2d_backward_im2col(dz1, conv_cache)
        for name in w:
            w[name], m[name], v[name] = plain.adam(w[name], grads[name], m[name], v[name], t, learning_rate=0.01)
        for name, value, gradient in model.parameters():
            np.testing.assert_array_equal(host(gradient), grads[name], err_msg=f"step {t}: d{name}")
            np.testing.assert_array_equal(host(value), w[name], err_msg=f"step {t}: {name}")
    assert (conv.name, hidden.name, last.name) == ("conv2d", "dense", "dense_1")
