"""The plain track: every layer's forward and backward, the loss and the optimisers, straight from the textbook.

Read this first. Each function is a few lines under its formula: NumPy only, no buffers,
threads, chunks or backend tuning, runnable on small arrays. Forwards return ``(out, cache)``,
backwards take ``(dout, cache)`` and return the gradients, as in CS231n's ``layers.py``.

The fast code in ``minicnn.layers``, :mod:`minicnn.im2col`, :mod:`minicnn.losses` and
:mod:`minicnn.optimizers` computes the same numbers with tricks (strided views, kept
buffers, in-place updates, threads); each fast forward and backward names its plain twin
here, and ``tests/spec/test_plain_twins.py`` checks that they agree: bit for bit where both add
in the same order, within a bound on the rounding of the sum otherwise. The same tests check
every plain backward against central differences, so the plain track is proved right on
its own.

- ``activations.py``: relu_forward/backward, sigmoid, sigmoid_forward/backward, tanh_forward/backward,
  softmax, log_softmax, softmax_forward/backward
- ``dense.py``: dense_forward/backward, flatten_forward/backward
- ``conv.py``: conv2d_forward/backward_loops (seven loops); im2col, col2im and
  conv2d_forward/backward_im2col (one matrix product); same_padding, pad
- ``pooling.py``: max_pool_forward/backward (the first winner takes the gradient)
- ``dropout.py``: dropout_mask, dropout_forward/backward (inverted dropout)
- ``losses.py``: binary_cross_entropy_forward/backward, the same from logits, and
  sigmoid_binary_cross_entropy_backward (p - y); categorical_cross_entropy_forward/backward, the
  same from logits, softmax_categorical_cross_entropy_backward (p - y), one_hot;
  mean_squared_error_forward/backward
- ``optimizers.py``: sgd (momentum), adam (Keras's form), rmsprop (Keras 3's form)
- ``normalization.py``: batch_norm_forward/backward_train and _inference, moving_average
- ``average_pooling.py``: average_pool_forward/backward, global_average_pool_forward/backward

Examples
--------
A layer and its backward on a tiny array:

>>> import numpy as np
>>> from minicnn import plain
>>> x = np.array([[1.0, -2.0, 3.0]])
>>> y, cache = plain.relu_forward(x)
>>> y
array([[1., 0., 3.]])
>>> plain.relu_backward(np.ones_like(x), cache)
array([[1., 0., 1.]])
"""

from minicnn.plain.activations import (
    log_softmax,
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    softmax,
    softmax_backward,
    softmax_forward,
    tanh_backward,
    tanh_forward,
)
from minicnn.plain.average_pooling import (
    average_pool_backward,
    average_pool_forward,
    global_average_pool_backward,
    global_average_pool_forward,
)
from minicnn.plain.conv import (
    col2im,
    conv2d_backward_im2col,
    conv2d_backward_loops,
    conv2d_forward_im2col,
    conv2d_forward_loops,
    im2col,
    pad,
    same_padding,
)
from minicnn.plain.dense import dense_backward, dense_forward, flatten_backward, flatten_forward
from minicnn.plain.dropout import dropout_backward, dropout_forward, dropout_mask
from minicnn.plain.losses import (
    EPSILON,
    binary_cross_entropy_backward,
    binary_cross_entropy_forward,
    binary_cross_entropy_logits_backward,
    binary_cross_entropy_logits_forward,
    categorical_cross_entropy_backward,
    categorical_cross_entropy_forward,
    categorical_cross_entropy_logits_backward,
    categorical_cross_entropy_logits_forward,
    mean_squared_error_backward,
    mean_squared_error_forward,
    one_hot,
    sigmoid_binary_cross_entropy_backward,
    softmax_categorical_cross_entropy_backward,
)
from minicnn.plain.normalization import (
    batch_norm_backward_inference,
    batch_norm_backward_train,
    batch_norm_forward_inference,
    batch_norm_forward_train,
    moving_average,
)
from minicnn.plain.optimizers import adam, rmsprop, sgd
from minicnn.plain.pooling import max_pool_backward, max_pool_forward

__all__ = [
    "average_pool_backward",
    "average_pool_forward",
    "batch_norm_backward_inference",
    "batch_norm_backward_train",
    "batch_norm_forward_inference",
    "batch_norm_forward_train",
    "global_average_pool_backward",
    "global_average_pool_forward",
    "moving_average",
    "EPSILON",
    "adam",
    "binary_cross_entropy_backward",
    "binary_cross_entropy_forward",
    "binary_cross_entropy_logits_backward",
    "binary_cross_entropy_logits_forward",
    "col2im",
    "conv2d_backward_im2col",
    "conv2d_backward_loops",
    "conv2d_forward_im2col",
    "conv2d_forward_loops",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "dropout_mask",
    "flatten_backward",
    "flatten_forward",
    "im2col",
    "max_pool_backward",
    "max_pool_forward",
    "pad",
    "relu_backward",
    "relu_forward",
    "same_padding",
    "sgd",
    "sigmoid_binary_cross_entropy_backward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_forward",
    "categorical_cross_entropy_backward",
    "categorical_cross_entropy_forward",
    "categorical_cross_entropy_logits_backward",
    "categorical_cross_entropy_logits_forward",
    "log_softmax",
    "mean_squared_error_backward",
    "mean_squared_error_forward",
    "one_hot",
    "rmsprop",
    "softmax",
    "softmax_backward",
    "softmax_categorical_cross_entropy_backward",
    "softmax_forward",
    "tanh_backward",
    "tanh_forward",
]
