// Overlapping max-pooling (paper, section 3.4), NCHW layout: windows of size x size
// pixels, stride pixels apart; with size 3 and stride 2 neighbouring windows overlap.
//
// argmax[n, c, oy, ox] is the position y * width + x, inside its (n, c) plane, of the
// input pixel that won the window. The NumPy path in maxpool.py stores the same thing.
// out_height and out_width come from maxpool.py (rounded down, or up with ceil_mode): a
// window may run past the bottom or right edge, and then only the pixels inside count.
//
// scalar_t is float or double, fixed when the file is compiled (tinyalex/cuda.py). Both
// kernels walk their elements with KERNEL_LOOP (tinyalex/cuda.py) and use no shared memory
// and no atomics.

// One thread owns one output element (n, c, oy, ox). Ties go to the first maximum in
// row-major order, as NumPy's argmax does.
extern "C" __global__ void maxpool_forward(const scalar_t* x, scalar_t* out, int* argmax, int count,
                                int height, int width, int out_height, int out_width,
                                int size, int stride)
{
    KERNEL_LOOP(i, count) {
        int ox = i % out_width;
        int oy = (i / out_width) % out_height;
        int plane = i / (out_width * out_height);  // n * channels + c
        const scalar_t* x_p = x + (long long)plane * height * width;
        int y0 = oy * stride, x0 = ox * stride;
        int y_end = min(y0 + size, height), x_end = min(x0 + size, width);
        int best = y0 * width + x0;
        for (int y = y0; y < y_end; ++y) {
            for (int x_ = x0; x_ < x_end; ++x_) {
                if (x_p[y * width + x_] > x_p[best]) best = y * width + x_;
            }
        }
        out[i] = x_p[best];
        argmax[i] = best;
    }
}

// Backward as a gather: one thread owns one input element (n, c, y, x) and adds up dout
// over the windows that cover it and chose it. Every dx element is written by exactly one
// thread, so the result is deterministic and needs no atomics.
// Window oy covers rows oy*stride .. oy*stride + size - 1, so the windows covering row y
// are oy_first .. oy_last below (likewise for columns).
extern "C" __global__ void maxpool_backward(const scalar_t* dout, const int* argmax, scalar_t* dx, int count,
                                 int height, int width, int out_height, int out_width,
                                 int size, int stride)
{
    KERNEL_LOOP(i, count) {
        int x_ = i % width;
        int y = (i / width) % height;
        int plane = i / (width * height);
        int oy_first = y < size ? 0 : (y - size) / stride + 1;
        int ox_first = x_ < size ? 0 : (x_ - size) / stride + 1;
        int oy_last = min(y / stride, out_height - 1);
        int ox_last = min(x_ / stride, out_width - 1);
        long long offset = (long long)plane * out_height * out_width;
        scalar_t sum = 0;
        for (int oy = oy_first; oy <= oy_last; ++oy) {
            for (int ox = ox_first; ox <= ox_last; ++ox) {
                if (argmax[offset + oy * out_width + ox] == y * width + x_) {
                    sum += dout[offset + oy * out_width + ox];
                }
            }
        }
        dx[i] = sum;
    }
}
