"""The study's network as a library function: examples, tests and benchmarks build it from here.

The study ("Image Classification of Lung X-Ray Scans") stacks four 3 x 3 convolutions (32, 64,
128, 128 filters, ReLU, "valid" padding), each followed by a 2 x 2 max pool, then Flatten,
Dropout(0.5), Dense(512, ReLU) and Dense(1, sigmoid): 17,018,497 parameters at 300 x 300 x 1.

Each conv/pool stage shrinks a side s to floor((s - 2) / 2), so the last pool still has a pixel
to pool only from :data:`MIN_IMAGE_SIZE` up (46 -> 22 -> 10 -> 4 -> 1).

Examples
--------
>>> from minicnn.models import study_cnn
>>> model = study_cnn(image_size=300)
>>> f"{model.count_params():,}", model.output_shape
('17,018,497', (1,))
"""

from __future__ import annotations

from minicnn import layers
from minicnn.model import Sequential

MIN_IMAGE_SIZE = 46
"""The smallest square input the study's four conv/pool stages allow (46 -> 22 -> 10 -> 4 -> 1)."""


def study_cnn(image_size: int = 300, seed: int = 0) -> Sequential:
    """The study's network: four Conv2D/MaxPool2D stages, Dropout(0.5), Dense(512), Dense(1, sigmoid).

    Parameters
    ----------
    image_size : int
        Side of the square grayscale input, ``(image_size, image_size, 1)``; at least
        :data:`MIN_IMAGE_SIZE`.
    seed : int
        Fixes the initial weights and the dropout masks.

    Returns
    -------
    Sequential
        Built, not compiled. Its output, ``(N, 1)``, is P(label 1): P(Normal) in the study.

    Raises
    ------
    ValueError
        ``image_size`` below :data:`MIN_IMAGE_SIZE`.
    """
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(
            f"study_cnn: image_size {image_size} is too small for the study's four conv/pool stages: "
            f"the smallest valid size is {MIN_IMAGE_SIZE}"
        )
    return Sequential(
        [
            layers.Conv2D(32, 3, activation="relu", input_shape=(image_size, image_size, 1)),
            layers.MaxPool2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPool2D(2),
            layers.Conv2D(128, 3, activation="relu"),
            layers.MaxPool2D(2),
            layers.Conv2D(128, 3, activation="relu"),
            layers.MaxPool2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=seed,
    )
