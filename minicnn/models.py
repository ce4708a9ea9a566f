"""The study's network as a library function: examples, tests and benchmarks build it from here.

The study ("Image Classification of Lung X-Ray Scans") stacks four 3 x 3 convolutions (32, 64,
128, 128 filters, ReLU, "valid" padding), each followed by a 2 x 2 max pool, then Flatten,
Dropout(0.5), Dense(512, ReLU) and Dense(1, sigmoid): 17,018,497 parameters at 300 x 300 x 1.
With ``classes=3`` (Normal, bacterial, viral: the study's future work) the last layer is
Dense(3, softmax) instead, one probability per class; everything before it is the same.

Each conv/pool stage shrinks a side s to floor((s - 2) / 2), so the last pool still has a pixel
to pool only from :data:`MIN_IMAGE_SIZE` up (46 -> 22 -> 10 -> 4 -> 1).

Examples
--------
>>> from minicnn.models import study_cnn
>>> model = study_cnn(image_size=300)
>>> f"{model.count_params():,}", model.output_shape
('17,018,497', (1,))
>>> study_cnn(image_size=300, classes=3).output_shape
(3,)
"""

from __future__ import annotations

from minicnn import layers
from minicnn.checks import check_whole_number
from minicnn.model import Sequential

MIN_IMAGE_SIZE = 46
"""The smallest square input the study's four conv/pool stages allow (46 -> 22 -> 10 -> 4 -> 1)."""


def output_layer(classes: int) -> layers.Dense:
    """The last layer: Dense(1, sigmoid) for the study's 2 classes, Dense(K, softmax) for K >= 3.

    Two classes need one output, P(label 1), as in the study; K classes need K outputs that sum
    to 1, which the softmax gives: p_k = exp(z_k) / sum_j exp(z_j).
    """
    if classes == 2:
        return layers.Dense(1, activation="sigmoid")
    return layers.Dense(classes, activation="softmax")


def study_cnn(image_size: int = 300, seed: int = 0, classes: int = 2) -> Sequential:
    """The study's network: four Conv2D/MaxPool2D stages, Dropout(0.5), Dense(512), Dense(1, sigmoid).

    Parameters
    ----------
    image_size : int
        Side of the square grayscale input, ``(image_size, image_size, 1)``; at least
        :data:`MIN_IMAGE_SIZE`.
    seed : int
        Fixes the initial weights and the dropout masks.
    classes : int, default 2
        2: the study's network, ending in Dense(1, sigmoid); K >= 3 (3: Normal, bacterial,
        viral): the same network ending in Dense(K, softmax).

    Returns
    -------
    Sequential
        Built, not compiled. Its output is ``(N, 1)``, P(label 1), P(Normal) in the study, for
        2 classes; ``(N, K)``, the probability of each class, for K >= 3.

    Raises
    ------
    ValueError
        ``image_size`` below :data:`MIN_IMAGE_SIZE`, or ``classes`` below 2.
    """
    classes = check_whole_number("study_cnn", "classes", classes, 2)
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
            output_layer(classes),
        ],
        seed=seed,
    )
