"""The arrays of one slot (one direction of one layer) and of the output
layer, as views into the flat vector theta, found through the table of
``fastrnn._layout.Architecture.table``. Twin of ``fastrnn.kernels.layout``."""


def slot_arrays(theta, table, slot):
    """Views W_x, W_h, b_h, b_hn of ``slot`` (b_hn is empty for cells without it)."""
    W_x = _view(theta, table[4 * slot])
    W_h = _view(theta, table[4 * slot + 1])
    b_h = _vector(theta, table[4 * slot + 2])
    b_hn = _vector(theta, table[4 * slot + 3])
    return W_x, W_h, b_h, b_hn


def output_arrays(theta, table):
    """Views W_y, b_y of the output layer."""
    n = table.shape[0]
    return _view(theta, table[n - 2]), _vector(theta, table[n - 1])


def slot_transposes(thetaT, table, slot):
    """W_xᵀ, W_hᵀ of ``slot`` as views into thetaT (theta with every matrix
    stored transposed, ``fastrnn._layout.transposed``), or (0, 0) arrays
    when thetaT is empty."""
    return _view_t(thetaT, table[4 * slot]), _view_t(thetaT, table[4 * slot + 1])


def output_transpose(thetaT, table):
    """W_yᵀ as a view into thetaT, or a (0, 0) array when thetaT is empty."""
    return _view_t(thetaT, table[table.shape[0] - 2])


def _view_t(thetaT, entry):
    if len(thetaT) == 0:
        return thetaT.reshape((0, 0))
    offset, rows, cols = entry
    return thetaT[offset:offset + rows * cols].reshape((cols, rows))


def _view(theta, entry):
    offset, rows, cols = entry
    return theta[offset:offset + rows * cols].reshape((rows, cols))


def _vector(theta, entry):
    offset, rows = entry[0], entry[1]
    return theta[offset:offset + rows]
