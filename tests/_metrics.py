"""How far apart two results are, as docs/math.md measures agreement."""
import numpy as np


def normwise(actual, desired):
    """‖actual − desired‖ / ‖desired‖ per array (the plain difference when
    ``desired`` is zero)."""
    actual, desired = np.asarray(actual, float), np.asarray(desired, float)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    scale = np.linalg.norm(desired)
    diff = np.linalg.norm(actual - desired)
    return diff / scale if scale else diff


def flat(value):
    """Nested outputs (tuples, lists of per-sequence arrays, dicts by key) as
    one list of arrays, to compare two results array by array."""
    if isinstance(value, dict):
        return [np.asarray(value[key]) for key in sorted(value)]
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in flat(v)]
    return [np.asarray(value, dtype=float)]
