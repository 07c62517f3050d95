"""The types the public API is annotated with (``py.typed``: a user's
mypy checks calls into fastrnn). Arrays are NumPy arrays of any dtype;
anything NumPy can turn into one is accepted where ``ArrayLike`` is."""
from typing import Any, Mapping, Sequence, Union

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
ArrayLike = npt.ArrayLike
Params = Mapping[str, npt.ArrayLike]
# One sequence, a batch, or a list of sequences of any lengths.
Inputs = Union[npt.ArrayLike, Sequence[npt.ArrayLike]]
# An initial state: an array, an LSTM's (h, c) (either may be None), or None.
State = Any
RandomState = Union[None, int, np.integer[Any], np.random.Generator]
