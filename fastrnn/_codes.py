"""Integer codes that Python passes to the kernels for string options.

Kept in one module that both twins import, so a code can never mean one
thing to the reference and another to the kernels.
"""
OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM = range(5)

CLIP_MODES = ("norm", "value")
CLIP_NONE, CLIP_NORM, CLIP_VALUE = range(3)

# Cells, as the length of the tuple a kernel receives (see fastrnn._cells).
RNN, LSTM, GRU = 1, 2, 3

# Output heads (see fastrnn.reference.head).
LOSSES = ("cross_entropy", "squared_error")
CROSS_ENTROPY, SQUARED_ERROR = range(2)
OUTPUTS = ("every_step", "last_step")
EVERY_STEP, LAST_STEP = range(2)

# What train_epochs returns.
OK, LOSS_NOT_FINITE, GRAD_NOT_FINITE, UPDATE_NOT_FINITE, STOPPED = range(5)
