"""Shared fixtures of the pipeline tests: small random data with the structure the algorithms exploit."""
import os
import sys

import numpy as np

PIPELINE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PIPELINE)
if PIPELINE not in sys.path:
    sys.path.insert(0, PIPELINE)


def correlated_inputs(rng, cols, n, rank=16, noise=0.1):
    """Calibration activations X (cols, n) whose columns (input features) are strongly correlated:
    a low-rank signal plus a little independent noise, like real layer inputs. The Hessian
    H = 2 X X^T / n then has large off-diagonal terms, which is what GPTQ / SparseGPT exploit."""
    A = rng.standard_normal((cols, rank))
    Z = rng.standard_normal((rank, n))
    return A @ Z + noise * rng.standard_normal((cols, n))


def hessian(X):
    return 2.0 * X @ X.T / X.shape[1]


def random_keep_24(rng, rows, cols):
    """A random 2:4 keep-mask: exactly 2 kept of every 4 consecutive input columns."""
    order = np.argsort(rng.random((rows, cols // 4, 4)), axis=-1)[..., :2]
    keep = np.zeros((rows, cols // 4, 4), bool)
    np.put_along_axis(keep, order, True, -1)
    return keep.reshape(rows, cols)


def per_group_count(a, m=4):
    """Nonzeros (or True entries) per group of m consecutive input columns: (rows, cols / m)."""
    return (np.asarray(a).reshape(a.shape[0], -1, m) != 0).sum(-1)


def output_error(W, Q, X):
    """||W X - Q X||_F: the layer-output error that GPTQ and SparseGPT minimise."""
    return float(np.linalg.norm((np.asarray(W, np.float64) - np.asarray(Q, np.float64)) @ X))
