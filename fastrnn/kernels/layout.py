"""The arrays of one slot and of the output layer as views into theta:
the twin of ``fastrnn.reference.layout`` (read that module)."""
from fastrnn._jit import kernel


@kernel(inline=True)
def _view(theta, entry_offset, rows, cols):
    return theta[entry_offset:entry_offset + rows * cols].reshape((rows, cols))


@kernel
def slot_arrays(theta, table, slot):
    """Views W_x, W_h, b_h, b_hn of ``slot`` (b_hn is empty for cells without it)."""
    r = 4 * slot
    if table.shape[1] != 3 or r + 3 >= table.shape[0] - 2:
        raise ValueError("slot_arrays: slot out of range of the layout table")
    W_x = _view(theta, table[r, 0], table[r, 1], table[r, 2])
    W_h = _view(theta, table[r + 1, 0], table[r + 1, 1], table[r + 1, 2])
    b_h = theta[table[r + 2, 0]:table[r + 2, 0] + table[r + 2, 1]]
    b_hn = theta[table[r + 3, 0]:table[r + 3, 0] + table[r + 3, 1]]
    return W_x, W_h, b_h, b_hn


@kernel
def output_arrays(theta, table):
    """Views W_y, b_y of the output layer."""
    n = table.shape[0]
    W_y = _view(theta, table[n - 2, 0], table[n - 2, 1], table[n - 2, 2])
    b_y = theta[table[n - 1, 0]:table[n - 1, 0] + table[n - 1, 1]]
    return W_y, b_y


@kernel
def slot_transposes(thetaT, table, slot):
    """W_xᵀ, W_hᵀ of ``slot`` as views into thetaT (theta with every matrix
    stored transposed, ``fastrnn._layout.transposed``), or (0, 0) arrays
    when thetaT is empty."""
    r = 4 * slot
    if table.shape[1] != 3 or r + 3 >= table.shape[0] - 2:
        raise ValueError("slot_transposes: slot out of range of the layout table")
    if thetaT.shape[0] == 0:
        return _view(thetaT, 0, 0, 0), _view(thetaT, 0, 0, 0)
    W_xT = _view(thetaT, table[r, 0], table[r, 2], table[r, 1])
    W_hT = _view(thetaT, table[r + 1, 0], table[r + 1, 2], table[r + 1, 1])
    return W_xT, W_hT


@kernel
def output_transpose(thetaT, table):
    """W_yᵀ as a view into thetaT, or a (0, 0) array when thetaT is empty."""
    n = table.shape[0]
    if thetaT.shape[0] == 0:
        return _view(thetaT, 0, 0, 0)
    return _view(thetaT, table[n - 2, 0], table[n - 2, 2], table[n - 2, 1])
