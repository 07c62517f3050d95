"""The shape contract every cell kernel checks on entry: Numba checks no
bounds, so a mismatched array would be read or written out of range."""
from fastrnn._jit import kernel


@kernel
def check_cell_arguments(W_h, b_hn, offsets, order, running, state0, H, cache, n_blocks,
                         cache_blocks, extra_bias):
    N, d = H.shape
    B = offsets.shape[0] - 1
    if (W_h.shape[0] != n_blocks * d or W_h.shape[1] != d
            or b_hn.shape[0] != (d if extra_bias else 0)
            or order.shape[0] != B or offsets[0] != 0 or offsets[B] != N
            or running.shape[0] < 1 or running[0] != B
            or state0.shape[1] != B or state0.shape[2] != d
            or cache.shape[0] != N or cache.shape[1] != cache_blocks * d):
        raise ValueError("cell kernel: expected W_h (G·d, d), b_hn, offsets (B + 1,) ending "
                         "at N, order (B,), state0 (n_states, B, d), H (N, d), cache (N, c·d)")
