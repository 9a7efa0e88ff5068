"""Convolutions that keep less for backward: the im2col matrix rebuilt, or shared.

A :class:`~tinyalex.layers.Conv2D` keeps its im2col matrix from forward to backward: the
largest buffer of the network, about k*k / stride^2 times the size of its input (conv2's:
25 times, 112 MB per column at batch 32). Two engines trade a little time for it:

* :class:`RebuildingConv2D` keeps only its input and builds the matrix again in backward,
  one more copy for a fraction of the memory. The engine table uses it for every conv
  layer on a GPU, where memory decides the batch a user can afford, and for conv1
  everywhere: conv1's matrix is the network's largest (134 MiB per column at batch 32),
  and, built first and used last, it is held through the whole backward pass, which is
  when memory peaks (docs/benchmarks.md measures both).
* :class:`SharedImageCols` lets the two columns' conv1 on one device, which read the same
  images with the same geometry, build one matrix between them instead of two: in turn,
  the first column builds it and the second takes it; side by side, in a thread each,
  each builds half of it, and the one matrix is kept for both columns' backward.
"""

import threading

from ..backend import get_array_module
from ..layers.conv import Conv2D, im2col, im2col_kernel, output_size, patches


class RebuildingConv2D(Conv2D):
    """:class:`~tinyalex.layers.Conv2D` that keeps its input instead of its im2col matrix
    and rebuilds the matrix in backward (or reads the one the two columns share)."""

    shared = None   # a SharedImageCols, for the conv1 layers of two columns on one device

    def forward(self, x, train=True):
        self.check_input(x)
        out = self.multiply(self.build_cols(x, "train" if train else "evaluation"), x.shape, train)
        self.cols, self.x = None, (x if train else None)   # backward builds cols from x again
        return out

    def backward(self, dout):
        self.check_saved(self.x)
        self.cols, self.x = self.build_cols(self.x, "backward"), None
        return super().backward(dout)

    def build_cols(self, x, use):
        """The im2col matrix of ``x`` for a pass of ``use`` ("train", "evaluation" or
        "backward"): built as forward builds it, or through the matrix the two columns'
        conv1 share."""
        if self.shared is not None:
            return self.shared.cols(x, self, use)
        return self.im2col(x)

    def im2col(self, x):
        kernels = self.kernels_for(x, "forward")
        if kernels is None:
            return im2col(x, self.kernel_size, self.stride, self.pad)
        return im2col_kernel(x, self.kernel_size, self.stride, self.pad, kernels)

    def __repr__(self):
        return "Rebuilding" + super().__repr__()


class SharedImageCols:
    """One im2col matrix for the two columns' conv1 layers on one device.

    Both read the same images (the same array) with the same kernel size, stride and
    padding, so their matrices are equal. The first layer to ask for the matrix of a pass
    starts it; it is filled in ``parts`` slices of the batch, each by whichever layer claims
    it first, and every layer waits until the last slice is in. So a column alone, or the
    columns in turn, build the whole matrix once, and two columns in threads of their own
    build half each, at the same time.

    Without ``keep``, a matrix serves one pass of both columns (forward, or backward, which
    builds it again); with ``keep``, a training forward's matrix also serves both columns'
    backward. A layer never reads a matrix twice in forward: its next forward pass starts a
    new one, even from the same array, whose pixels may have changed in between. A call
    with another array, or from a layer with another geometry, starts afresh too.
    """

    def __init__(self, columns=2, parts=1, keep=False):
        self.columns, self.parts, self.keep = columns, parts, keep
        self.changed = threading.Condition()
        self.current = None      # the matrix being built or held: a SharedMatrix

    def cols(self, x, layer, use):
        """The im2col matrix of ``x`` for ``layer``'s pass of ``use`` ("train",
        "evaluation" or "backward"): this call builds the slices nobody has claimed yet,
        then waits for the others' slices."""
        with self.changed:
            matrix = self.current
            if matrix is None or not matrix.serves(x, layer, use):
                matrix = self.current = SharedMatrix(x, layer, self.parts, use, keep=self.keep and use == "train")
            matrix.readers[use == "backward"].add(id(layer))
        while (part := self.claim(matrix)) is not None:
            try:
                matrix.fill(part, layer)
            except BaseException as error:
                with self.changed:
                    matrix.error = error
                    self.forget(matrix)
                raise
            with self.changed:
                matrix.filled += 1
                self.changed.notify_all()
        with self.changed:
            self.changed.wait_for(lambda: matrix.filled == matrix.parts or matrix.error is not None)
            if matrix.error is not None:
                raise RuntimeError("the other column's conv1 failed to build its part of the im2col matrix "
                                   "the two columns share") from matrix.error
            if matrix.served_all(self.columns):
                self.forget(matrix)
            return matrix.cols

    def claim(self, matrix):
        """The next slice of ``matrix`` nobody builds yet, now this caller's; None if none is left."""
        with self.changed:
            if matrix.claimed == matrix.parts or matrix.error is not None:
                return None
            matrix.claimed += 1
            return matrix.claimed - 1

    def forget(self, matrix):
        """Let go of ``matrix`` (the caller holds the lock); wakes whoever waits for it."""
        if self.current is matrix:
            self.current = None
        self.changed.notify_all()


def geometry_of(layer):
    return layer.kernel_size, layer.stride, layer.pad


class SharedMatrix:
    """One array's im2col matrix, filled a slice of the batch at a time, and who read it."""

    def __init__(self, x, layer, parts, use, keep):
        self.source, self.geometry, self.parts = x, geometry_of(layer), parts
        self.for_backward, self.keep = use == "backward", keep
        self.readers = (set(), set())     # ids of the layers that read it in forward, in backward
        self.claimed = self.filled = 0
        self.error = None
        N, C, H, W = x.shape
        k, s, p = self.geometry
        self.patch_shape = (C, k, k, N, output_size(H, k, s, p), output_size(W, k, s, p))
        self.cols = None
        if parts > 1:
            C, k, _, N, OH, OW = self.patch_shape
            self.cols = get_array_module(x).empty((C * k * k, N * OH * OW), dtype=x.dtype)

    def serves(self, x, layer, use):
        """Whether ``layer``'s pass of ``use`` on ``x`` reads this matrix."""
        if self.source is not x or self.geometry != geometry_of(layer) or self.error is not None:
            return False
        forward, backward = self.readers
        if use != "backward":
            return not self.for_backward and id(layer) not in forward
        return id(layer) not in backward and (self.for_backward or (self.keep and id(layer) in forward))

    def served_all(self, columns):
        """Whether every column has read it in the last pass it serves."""
        forward, backward = self.readers
        return len(backward if self.for_backward or self.keep else forward) == columns

    def fill(self, part, layer):
        """Builds slice ``part`` of the batch's images into the matrix: in one piece for one
        part, else as a copy of the slice's patches into its columns of the matrix."""
        x = self.source
        if self.parts == 1:
            self.cols = layer.im2col(x)
            return
        N = x.shape[0]
        start, stop = part * N // self.parts, (part + 1) * N // self.parts
        if start == stop:
            return
        target = self.cols.reshape(self.patch_shape)[:, :, :, start:stop]     # a view: these images' columns
        if layer.kernels_for(x, "forward") is None:
            target[...] = patches(x[start:stop], *self.geometry)
        else:
            target[...] = layer.im2col(x[start:stop]).reshape(target.shape)

