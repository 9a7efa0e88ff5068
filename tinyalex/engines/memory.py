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
  images with the same geometry, build one matrix between them instead of two.
"""

from ..layers.conv import Conv2D, im2col, im2col_kernel


class RebuildingConv2D(Conv2D):
    """:class:`~tinyalex.layers.Conv2D` that keeps its input instead of its im2col matrix
    and rebuilds the matrix in backward."""

    shared = None   # a SharedImageCols, for the conv1 layers of two columns on one device

    def forward(self, x, train=True):
        self.check_input(x)
        out = self.multiply(self.build_cols(x), x.shape, train)
        self.cols, self.x = None, (x if train else None)   # backward rebuilds cols from x
        return out

    def backward(self, dout):
        self.check_saved(self.x)
        self.cols, self.x = self.build_cols(self.x), None
        return super().backward(dout)

    def build_cols(self, x):
        """The im2col matrix of ``x``, built as forward builds it (or borrowed from the
        other column's conv1, which has just built it)."""
        if self.shared is not None:
            cols = self.shared.take(x, self)
            if cols is not None:
                return cols
        kernels = self.kernels_for(x, "forward")
        if kernels is None:
            cols = im2col(x, self.kernel_size, self.stride, self.pad)
        else:
            cols = im2col_kernel(x, self.kernel_size, self.stride, self.pad, kernels)
        if self.shared is not None:
            self.shared.offer(x, self, cols)
        return cols

    def __repr__(self):
        return "Rebuilding" + super().__repr__()


class SharedImageCols:
    """Hands the im2col matrix one conv layer built to the other layer that asks for the
    same input array with the same geometry, once.

    On one device the two columns' conv1 layers read the same images (the same array)
    with the same kernel size, stride and padding, so their im2col matrices are equal: the
    first to ask builds it, the second takes it, and this object forgets it. It holds a
    matrix only between those two calls, never from one step to the next; a call with
    another input array (even one equal to it), or from a layer with another geometry,
    builds afresh.
    """

    def __init__(self):
        self.source = self.geometry = self.cols = None

    @staticmethod
    def geometry_of(layer):
        return layer.kernel_size, layer.stride, layer.pad

    def take(self, x, layer):
        """The matrix offered for this very array ``x`` and ``layer``'s geometry, or None."""
        if self.source is x and self.geometry == self.geometry_of(layer):
            cols, self.source, self.geometry, self.cols = self.cols, None, None, None
            return cols
        return None

    def offer(self, x, layer, cols):
        self.source, self.geometry, self.cols = x, self.geometry_of(layer), cols
