"""Keras's row: the same model and batch in Keras 3 on TensorFlow, on the CPU, with Keras's default compile settings."""

from __future__ import annotations

import argparse
import os

from study_bench.common import DROPOUT_RATE, LEARNING_RATE, make_batch, time_calls


def run_keras(args: argparse.Namespace) -> dict:
    """Benchmark the same model in Keras 3 on TensorFlow, CPU only."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # this row is the CPU reference, even on a GPU machine
    try:
        import keras
        import tensorflow as tf
    except ImportError as error:
        return {"status": "not installed", "detail": str(error)}

    # Must happen before TensorFlow runs its first operation.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(args.image_size, args.image_size, 1)),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(DROPOUT_RATE),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )  # fmt: skip
    # Keras' defaults otherwise (jit_compile="auto"): what the study's code gets.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )

    x, y = make_batch(args.batch_size, args.image_size)

    def forward() -> None:
        model.predict_on_batch(x)

    def train_step() -> None:
        model.train_on_batch(x, y)

    forward_times = time_calls(forward, args.warmup, args.steps, lambda: None)
    train_times = time_calls(train_step, args.warmup, args.steps, lambda: None)
    return {
        "status": "ok",
        "version": f"keras {keras.__version__} / tensorflow {tf.__version__}",
        "params": int(model.count_params()),
        "forward_times_s": forward_times,
        "train_times_s": train_times,
    }
