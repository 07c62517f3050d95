"""Working with scikit-learn's tools without depending on scikit-learn.

fastrnn never imports scikit-learn itself. scikit-learn calls
``__sklearn_tags__`` (so it is imported by then); the not-fitted error and
the conversion warning below are also scikit-learn's where scikit-learn is
loaded (where they are raised, or where a worker's error is unpickled), so
that ``except sklearn.exceptions.NotFittedError`` works as well as
``except fastrnn.NotFittedError``: code that names scikit-learn's class has
loaded it. Supported: scikit-learn 1.6 and newer (the tags API,
``__sklearn_tags__``); older versions read ``_estimator_type``.

How scikit-learn's words map onto sequences: a 2-D X of shape
(n_samples, n_features) is ONE sequence of n_samples steps (rows are time
steps, so predictions depend on their order); a 3-D X is a batch of
sequences; a list is a list of sequences of any lengths. Integer X is token
ids, float X input vectors. ``expected_failed_checks`` lists the checks of
``sklearn.utils.estimator_checks`` that assume otherwise, with the reason.
"""
import sys


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""

    def __reduce__(self):
        # Raised in a worker process without scikit-learn, unpickled where
        # it is loaded: scikit-learn's NotFittedError there too.
        return _remake, (NotFittedError, "sklearn.exceptions", "NotFittedError", self.args)


class InputError(TypeError, ValueError):
    """A wrong input that fastrnn reports as a TypeError (a wrong kind of
    value) and scikit-learn's conventions as a ValueError (complex data, a
    missing y): ``except`` catches it as either."""


class DataConversionWarning(UserWarning):
    """fit converted y to the shape it expected (a column vector of labels,
    raveled)."""


_combined: dict[tuple[type, type], type] = {}


def _also(ours, module, name):
    """``ours``, also a subclass of scikit-learn's ``module.name`` when
    scikit-learn has loaded that module (one class per base, made once)."""
    base = getattr(sys.modules.get(module), name, None)
    if base is None or issubclass(ours, base):
        return ours
    if (ours, base) not in _combined:
        _combined[ours, base] = type(ours.__name__, (ours, base),
                                     {"__module__": __name__, "__doc__": ours.__doc__})
    return _combined[ours, base]


def _remake(ours, module, name, args):
    """An instance of ``_also(ours, module, name)``, unpickled."""
    return _also(ours, module, name)(*args)


def not_fitted_error(message):
    """NotFittedError(message), also an instance of scikit-learn's
    NotFittedError when scikit-learn is loaded."""
    return _also(NotFittedError, "sklearn.exceptions", "NotFittedError")(message)


def data_conversion_warning():
    """The category of a DataConversionWarning: fastrnn's, also
    scikit-learn's when scikit-learn is loaded."""
    return _also(DataConversionWarning, "sklearn.exceptions", "DataConversionWarning")


_ROWS_ARE_STEPS = (
    "a 2-D X is one sequence whose rows are time steps, not independent samples: the "
    "prediction at a step depends on the steps before it, so {what}")
_LIST_IS_SEQUENCES = (
    "fastrnn reads a list X as a list of sequences of any lengths (each a (T, k) array or "
    "(T,) token ids); the check fits X.tolist(), a list of rows, which is a list of "
    "one-dimensional float 'sequences' and refused with a ValueError naming X[0]")


def expected_failed_checks(estimator_type):
    """{check name: reason} for the checks of
    ``sklearn.utils.estimator_checks`` that cannot apply to a sequence model
    (pass it as ``check_estimator(..., expected_failed_checks=...)``)."""
    checks = {
        "check_methods_sample_order_invariance": _ROWS_ARE_STEPS.format(
            what="predictions on reordered rows are those of a different sequence"),
        "check_methods_subset_invariance": _ROWS_ARE_STEPS.format(
            what="predicting on a slice of the rows starts from the initial state at the "
                 "slice's first row, and differs from the whole sequence's predictions"),
        "check_sample_weight_equivalence_on_dense_data": _ROWS_ARE_STEPS.format(
            what="removing a row (weight 0) or repeating it (weight 2) makes a different "
                 "sequence, with different hidden states at every later step, while a "
                 "step's weight only scales that step's loss (for the sequences of a batch, "
                 "fastrnn's samples, the equivalence holds)"),
        "check_dtype_object": (
            "fastrnn reads X's dtype to tell token ids (integers) from input vectors "
            "(floats); an object array says neither, so it is refused with a TypeError "
            "naming X rather than guessed"),
    }
    if estimator_type == "classifier":
        checks["check_classifiers_train"] = _LIST_IS_SEQUENCES
    else:
        checks["check_regressors_train"] = (
            _LIST_IS_SEQUENCES + "; and for one sequence of T steps a 1-D y of length "
            "m != T is one m-vector target for the whole sequence (FastRNNRegressor's "
            "documented rule), so the check's y[:-1] fits a many-to-one model instead of "
            "being refused (output='every_step' refuses it)")
    return checks


def tags(estimator_type):
    """scikit-learn's Tags for a sequence model (``estimator_type`` is
    "classifier" or "regressor")."""
    from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags
    classifier = estimator_type == "classifier"
    return Tags(
        estimator_type=estimator_type,
        target_tags=TargetTags(required=True, one_d_labels=False, two_d_labels=False,
                               multi_output=not classifier, single_output=True),
        classifier_tags=ClassifierTags(multi_class=True, multi_label=False)
        if classifier else None,
        regressor_tags=None if classifier else RegressorTags(),
        # one_d_array stays False although 1-D integer X (one sequence of token
        # ids) is taken: scikit-learn's checks read one_d_array as "X is a 1-D
        # array of samples" and pass X[:, 0], float values that are no ids;
        # categorical stays False for the same reason (they would pass rounded
        # 2-D integers, which fastrnn reads as a batch of id sequences).
        input_tags=InputTags(one_d_array=False, two_d_array=True, three_d_array=True,
                             sparse=False, categorical=False, string=False,
                             allow_nan=False))
