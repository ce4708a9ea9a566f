"""Reference values from Keras for minicnn's tests: written once, checked in every test run.

    nice -n 19 /root/minicnn-runs/keras-venv/bin/python benchmarks/keras_reference.py \
        --out tests/fixtures/keras_reference.npz

Keras (TensorFlow on the CPU) computes, on small fixed inputs drawn from a seeded NumPy
generator, in float64 (``keras.config.set_floatx("float64")``):

* forward outputs, input gradients and weight gradients (``tf.GradientTape`` of the scalar
  L = sum(y * dy), dy a fixed random array, so dL/dy = dy) of ``BatchNormalization`` in training
  mode (batch statistics; the call also updates the moving mean and variance once, both stored)
  and then in inference mode (the moving statistics after that one update), on images
  (N, H, W, C) and on vectors (N, F); ``GlobalAveragePooling2D``; ``AveragePooling2D`` (a tiling
  pool on an odd size, whose last row is dropped, and an overlapping one);
* for the pieces minicnn will add next (their reference is stored now): the ``softmax``
  activation (one row of large logits to test stability), ``CategoricalCrossentropy`` and
  ``SparseCategoricalCrossentropy`` from probabilities and from logits, ``MeanSquaredError``,
  ``tanh``, each with its gradient, and two ``RMSprop`` steps (rho=0.9, epsilon=1e-7; Keras adds
  epsilon inside the square root: w -= lr * g / sqrt(v + epsilon); one gradient entry is tiny,
  so that the place of epsilon shows in the numbers).

The arrays are written with ``numpy.savez`` under names such as ``bn_image/train/y``, plus
``meta/versions`` and ``meta/settings`` (JSON text), so they load with ``allow_pickle=False``.
The tests compare minicnn (in float64, and in float32 where said) with these numbers to a
tolerance, never bit for bit: Keras and minicnn add in other orders.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

SEED = 20240623


def inputs() -> dict[str, np.ndarray]:
    """The fixed inputs, all float64 (labels int64), from one seeded generator."""
    rng = np.random.default_rng(SEED)
    arrays = {
        "bn_image/x": rng.normal(1.0, 2.0, size=(4, 3, 3, 2)),
        "bn_image/x_inference": rng.normal(0.5, 1.5, size=(3, 3, 3, 2)),
        "bn_image/gamma": rng.uniform(0.5, 1.5, size=2),
        "bn_image/beta": rng.normal(0.0, 0.5, size=2),
        "bn_image/moving_mean": rng.normal(0.0, 0.5, size=2),
        "bn_image/moving_variance": rng.uniform(0.5, 2.0, size=2),
        "bn_vector/x": rng.normal(-1.0, 3.0, size=(5, 3)),
        "bn_vector/x_inference": rng.normal(0.0, 1.0, size=(2, 3)),
        "bn_vector/gamma": rng.uniform(0.5, 1.5, size=3),
        "bn_vector/beta": rng.normal(0.0, 0.5, size=3),
        "bn_vector/moving_mean": rng.normal(0.0, 0.5, size=3),
        "bn_vector/moving_variance": rng.uniform(0.5, 2.0, size=3),
        "global_average_pooling2d/x": rng.normal(size=(2, 4, 5, 3)),
        "average_pooling2d_tiling/x": rng.normal(size=(2, 5, 5, 3)),
        "average_pooling2d_overlapping/x": rng.normal(size=(2, 5, 6, 2)),
        "softmax/x": np.vstack([rng.normal(size=(3, 4)), [[1000.0, 999.0, 998.0, -1000.0]]]),
        "tanh/x": rng.normal(0.0, 2.0, size=(3, 4)),
    }
    logits = rng.normal(0.0, 2.0, size=(5, 3))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([0, 2, 1, 2, 0])
    arrays.update(
        {
            "crossentropy/logits": logits,
            "crossentropy/probabilities": probabilities,
            "crossentropy/labels": labels,
            "crossentropy/one_hot": np.eye(3)[labels],
            "mse/y_true": rng.normal(size=(4, 2)),
            "mse/y_pred": rng.normal(size=(4, 2)),
            "rmsprop/w": rng.normal(size=(3, 2)),
            "rmsprop/g1": np.array([[0.5, -1.0], [2.0, 1e-4], [-0.3, 0.05]]),
            "rmsprop/g2": rng.normal(size=(3, 2)),
        }
    )
    return arrays


BN_SETTINGS = {"momentum": 0.9, "epsilon": 1e-3}
POOLS = {
    "average_pooling2d_tiling": {"pool_size": [2, 2], "strides": [2, 2]},
    "average_pooling2d_overlapping": {"pool_size": [2, 3], "strides": [1, 2]},
}
RMSPROP = {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-7}


def layer_gradients(tf, layer, x, upstream, training, weights):
    """y, dL/dx and dL/dweight for L = sum(y * upstream), through ``tf.GradientTape``."""
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x, *weights])
    return y.numpy(), [g.numpy() for g in grads]


def compute(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every reference value, computed by Keras on ``arrays``."""
    import keras
    import tensorflow as tf

    keras.config.set_floatx("float64")
    rng = np.random.default_rng(SEED + 1)  # the upstream gradients dy
    out: dict[str, np.ndarray] = {}

    for case in ("bn_image", "bn_vector"):
        x = arrays[f"{case}/x"]
        layer = keras.layers.BatchNormalization(**BN_SETTINGS)
        layer.build(x.shape)
        layer.set_weights([arrays[f"{case}/{key}"] for key in ("gamma", "beta", "moving_mean", "moving_variance")])
        assert [w.path.split("/")[-1] for w in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
        for mode, training, data in (("train", True, x), ("inference", False, arrays[f"{case}/x_inference"])):
            upstream = rng.normal(size=data.shape)
            y, (dx, dgamma, dbeta) = layer_gradients(tf, layer, data, upstream, training, [layer.gamma, layer.beta])
            out.update({f"{case}/{mode}/dy": upstream, f"{case}/{mode}/y": y, f"{case}/{mode}/dx": dx})
            out.update({f"{case}/{mode}/dgamma": dgamma, f"{case}/{mode}/dbeta": dbeta})
            if training:  # the one update of the moving statistics this training call made
                out[f"{case}/train/moving_mean_after"] = layer.moving_mean.numpy()
                out[f"{case}/train/moving_variance_after"] = layer.moving_variance.numpy()

    gap = keras.layers.GlobalAveragePooling2D()
    x = arrays["global_average_pooling2d/x"]
    upstream = rng.normal(size=(x.shape[0], x.shape[3]))
    y, (dx,) = layer_gradients(tf, gap, x, upstream, False, [])
    out.update({"global_average_pooling2d/dy": upstream, "global_average_pooling2d/y": y})
    out["global_average_pooling2d/dx"] = dx

    for case, settings in POOLS.items():
        pool = keras.layers.AveragePooling2D(tuple(settings["pool_size"]), tuple(settings["strides"]), padding="valid")
        x = arrays[f"{case}/x"]
        upstream = rng.normal(size=pool.compute_output_shape(x.shape))
        y, (dx,) = layer_gradients(tf, pool, x, upstream, False, [])
        out.update({f"{case}/dy": upstream, f"{case}/y": y, f"{case}/dx": dx})

    for name, function in (("softmax", keras.activations.softmax), ("tanh", keras.activations.tanh)):
        x = arrays[f"{name}/x"]
        upstream = rng.normal(size=x.shape)
        variable = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = function(variable)
            loss = tf.reduce_sum(y * upstream)
        out.update({f"{name}/dy": upstream, f"{name}/y": y.numpy()})
        out[f"{name}/dx"] = tape.gradient(loss, variable).numpy()

    def loss_and_gradient(loss_object, y_true, y_pred):
        variable = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            value = loss_object(y_true, variable)
        return np.asarray(value.numpy()), tape.gradient(value, variable).numpy()

    one_hot, labels = arrays["crossentropy/one_hot"], arrays["crossentropy/labels"]
    for source in ("probabilities", "logits"):
        from_logits = source == "logits"
        prediction = arrays[f"crossentropy/{source}"]
        for name, loss_object, y_true in (
            ("categorical", keras.losses.CategoricalCrossentropy(from_logits=from_logits), one_hot),
            ("sparse_categorical", keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), labels),
        ):
            value, gradient = loss_and_gradient(loss_object, y_true, prediction)
            out[f"{name}_crossentropy/from_{source}/loss"] = value
            out[f"{name}_crossentropy/from_{source}/gradient"] = gradient

    value, gradient = loss_and_gradient(keras.losses.MeanSquaredError(), arrays["mse/y_true"], arrays["mse/y_pred"])
    out.update({"mse/loss": value, "mse/gradient": gradient})

    w = tf.Variable(arrays["rmsprop/w"])
    optimizer = keras.optimizers.RMSprop(**RMSPROP)
    for step in (1, 2):
        optimizer.apply_gradients([(tf.constant(arrays[f"rmsprop/g{step}"]), w)])
        out[f"rmsprop/w_after_step{step}"] = w.numpy()

    out["meta/versions"] = np.array(
        json.dumps({"keras": keras.__version__, "tensorflow": tf.__version__, "numpy": np.__version__})
    )
    out["meta/settings"] = np.array(
        json.dumps({"seed": SEED, "batch_normalization": BN_SETTINGS, "average_pooling2d": POOLS, "rmsprop": RMSPROP})
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/keras_reference.npz"))
    args = parser.parse_args()
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the CPU: the same kernels wherever it is rerun
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arrays = inputs()
    results = compute(arrays)
    overlap = set(arrays) & set(results)
    assert not overlap, overlap
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays, **results)
    with np.load(args.out, allow_pickle=False) as check:  # it must load without pickle
        print(f"wrote {args.out}: {len(check.files)} arrays, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
