"""Characters to token ids and back, for character-level language models."""
import numpy as np
import numpy.typing as npt


class CharVocab:
    """The sorted set of characters of a text, each with an id.

    >>> vocab = CharVocab("hello")
    >>> vocab.encode("hole")
    array([1, 3, 2, 0])
    >>> vocab.decode([1, 0, 2, 2, 3])
    'hello'
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        if not text:
            raise ValueError("text: expected at least one character, got an empty string")
        self.chars = "".join(sorted(set(text)))
        self._ids = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other):
        return isinstance(other, CharVocab) and other.chars == self.chars

    def __repr__(self):
        return f"CharVocab({len(self)} characters: {self.chars[:40]!r}{'...' if len(self) > 40 else ''})"

    def encode(self, text: str) -> npt.NDArray[np.int64]:
        """int64 ids of the characters of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        try:
            return np.array([self._ids[ch] for ch in text], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"text: character {exc.args[0]!r} is not in the vocabulary "
                             f"of {len(self)} characters") from None

    def decode(self, ids: npt.ArrayLike) -> str:
        """The text whose characters have these ids."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"ids: expected a 1-D sequence of integer ids, got {ids.dtype} {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids: expected ids in [0, {len(self) - 1}], "
                             f"got values from {ids.min()} to {ids.max()}")
        return "".join(self.chars[i] for i in ids)

    def __getstate__(self):
        return {"chars": self.chars}

    def __setstate__(self, state):
        self.__init__(state["chars"])
