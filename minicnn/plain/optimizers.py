"""SGD with momentum, Adam and RMSprop the textbook way: pure functions, new arrays in, new arrays out.

Each takes a weight w, its gradient dw and the optimiser's state for that weight, and
returns the new weight and the new state; nothing is updated in place.

    SGD:   v = momentum * v - lr * dw;   w = w + v            (momentum 0: w = w - lr * dw)
    Adam:  m = b1 m + (1 - b1) dw;   v = b2 v + (1 - b2) dw**2
           w = w - lr_t * m / (sqrt(v) + eps),   lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)
    RMSprop: v = rho v + (1 - rho) dw**2;   w = w - lr * dw / sqrt(v + eps)   (eps inside, as Keras 3)

Adam is written in Keras's form, as the fast Adam: the bias correction goes into the step
size lr_t, and eps is added to the uncorrected sqrt(v). (The paper's form,
w - lr * m_hat / (sqrt(v_hat) + eps_hat) with m_hat = m / (1 - b1**t), v_hat = v / (1 - b2**t),
is the same step when eps_hat = eps / sqrt(1 - b2**t).)
"""

from __future__ import annotations

import math

import numpy as np


def sgd(w, dw, velocity=None, learning_rate=0.01, momentum=0.0):
    """One SGD step with (Keras-style) momentum: v = momentum * v - lr * dw, w = w + v.

    Parameters
    ----------
    w, dw : ndarray, any shape (the same)
    velocity : ndarray of that shape, or None for zeros (the first step)
    learning_rate : float
    momentum : float, in [0, 1)

    Returns
    -------
    w : ndarray, the new weight
    velocity : ndarray, the new velocity
    """
    velocity = np.zeros_like(w) if velocity is None else velocity
    velocity = momentum * velocity - learning_rate * dw
    return w + velocity, velocity


def adam(w, dw, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """One Adam step (Keras's form), t = 1 for the first step.

    Parameters
    ----------
    w, dw : ndarray, any shape (the same)
    m, v : ndarray of that shape, the running means of dw and dw**2 (zeros before the first step)
    t : int, the number of this step, from 1
    learning_rate, beta_1, beta_2, epsilon : float

    Returns
    -------
    w, m, v : ndarray, the new weight and running means
    """
    m = beta_1 * m + (1 - beta_1) * dw
    v = beta_2 * v + (1 - beta_2) * dw**2
    step_size = learning_rate * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    return w - step_size * (m / (np.sqrt(v) + epsilon)), m, v


def rmsprop(w, dw, v, learning_rate=0.001, rho=0.9, epsilon=1e-7):
    """One RMSprop step (Keras 3's form, without momentum or centering): epsilon under the square root.

    Parameters
    ----------
    w, dw : ndarray, any shape (the same)
    v : ndarray of that shape, the running mean of dw**2 (zeros before the first step)
    learning_rate, rho, epsilon : float

    Returns
    -------
    w, v : ndarray, the new weight and running mean
    """
    v = rho * v + (1 - rho) * dw**2
    return w - learning_rate * dw / np.sqrt(v + epsilon), v
