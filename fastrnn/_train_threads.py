"""Training on several threads, for mini-batches large enough to pay for it.

``fastrnn.kernels.train.train_epochs`` runs whole epochs in one compiled
call, on one core. When one update is big (at least
``_parallel.MIN_PARALLEL_FIT_WORK`` multiply-adds: a mini-batch of 32
sequences of 50 steps with 128 hidden units is 50 million), both cores pay
more than the Python step per update costs: this ``train_epochs``, with the
same signature, runs the reference's training loop
(``fastrnn.reference.train.run_epochs``) with the compiled kernels, each
update's loss and gradient in chunks of whole sequences on threads
(``fastrnn._parallel``), and the compiled clipping and optimizer. The chunks
depend only on the sizes, so the result does not depend on the number of
threads.
"""
import numpy as np

from fastrnn import _parallel
from fastrnn._parallel import loss_and_grad_in_chunks, work_per_row
from fastrnn.kernels.lstm import lstm_loss_and_grad
from fastrnn.kernels.rnn import rnn_loss_and_grad
from fastrnn.kernels.train import check_and_update
from fastrnn.reference.train import Steps, run_epochs


# As the reference: faults are reported by their codes, not as NumPy
# warnings (here only the weighted sums of the chunks' gradients could warn).
@np.errstate(divide="ignore", over="ignore", invalid="ignore")
def train_epochs(theta, sizes, X, Y, starts, lengths, order, batch_size, bptt,
                 optimizer, hyper, clip_mode, clip, state, step, losses, progress):
    """Run len(order) epochs of mini-batch training; see
    ``fastrnn.reference.train``."""
    k, d, m = int(sizes[1]), int(sizes[2]), int(sizes[3])
    steps = Steps(loss_and_grad_in_chunks(rnn_loss_and_grad, 1, work_per_row(1, k, d, m)),
                  loss_and_grad_in_chunks(lstm_loss_and_grad, 2, work_per_row(4, k, d, m)),
                  check_and_update)
    return run_epochs(steps, theta, sizes, X, Y, starts, lengths, order, batch_size, bptt,
                      optimizer, hyper, clip_mode, clip, state, step, losses, progress)


def is_worth_it(k, d, m, n_gates, batch_size, bptt):
    """Whether an update of batch_size sequences of bptt steps is big enough."""
    return batch_size > 1 and \
        batch_size * bptt * work_per_row(n_gates, k, d, m) >= _parallel.MIN_PARALLEL_FIT_WORK
