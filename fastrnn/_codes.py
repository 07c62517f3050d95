"""Integer codes that Python passes to the kernels for string options.

Kept in one module that both twins import, so a code can never mean one
thing to the reference and another to the kernels.
"""
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM = range(5)

CLIP_MODES = ("norm", "value")
CLIP_NONE, CLIP_NORM, CLIP_VALUE = range(3)

CELL_CODES = {"rnn": 0, "lstm": 1}
RNN, LSTM = 0, 1
