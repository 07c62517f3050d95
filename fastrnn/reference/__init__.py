"""The readable twin: every kernel in :mod:`fastrnn.kernels` has a NumPy
function here with the same name and signature. It is the ground truth the
kernels are tested against and the version to read next to the lecture notes.
"""
