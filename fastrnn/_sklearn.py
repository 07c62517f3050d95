"""Working with scikit-learn's tools without depending on scikit-learn.

fastrnn never imports scikit-learn itself. scikit-learn calls
``__sklearn_tags__`` (so it is imported by then), and a not-fitted error
raised while scikit-learn is loaded is also scikit-learn's NotFittedError,
so ``except sklearn.exceptions.NotFittedError`` works as well as
``except fastrnn.NotFittedError``. Supported: scikit-learn 1.6 and newer
(the tags API); older versions read ``_estimator_type``.
"""
import sys


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


_combined = {}


def not_fitted_error(message):
    """NotFittedError(message), also an instance of scikit-learn's
    NotFittedError when scikit-learn is loaded."""
    exceptions = sys.modules.get("sklearn.exceptions")
    base = getattr(exceptions, "NotFittedError", None)
    if base is None or issubclass(NotFittedError, base):
        return NotFittedError(message)
    if base not in _combined:
        _combined[base] = type("NotFittedError", (NotFittedError, base),
                               {"__module__": __name__, "__doc__": NotFittedError.__doc__})
    return _combined[base](message)


def tags(estimator_type):
    """scikit-learn's Tags for a sequence model (``estimator_type`` is
    "classifier" or "regressor"): 2-D input is one sequence (a row per step),
    3-D input a batch; lists of sequences are taken too."""
    from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags
    return Tags(estimator_type=estimator_type,
                target_tags=TargetTags(required=True, one_d_labels=True, two_d_labels=True,
                                       multi_output=estimator_type == "regressor",
                                       single_output=True),
                classifier_tags=ClassifierTags() if estimator_type == "classifier" else None,
                regressor_tags=RegressorTags() if estimator_type == "regressor" else None,
                input_tags=InputTags(one_d_array=True, two_d_array=True, three_d_array=True))
