// im2col and col2im for the convolution (paper, section 3.5), NCHW images.
//
// cols has one row per (c, i, j) -- channel c, row i and column j inside the k x k kernel --
// and one column per output pixel (n, oy, ox) of the batch, as im2col in conv.py builds it:
//
//   cols[(c * k + i) * k + j][(n * out_h + oy) * out_w + ox] = x[n, c, oy * stride - pad + i, ox * stride - pad + j]
//
// with zero where the window reaches into the padding. scalar_t is float or double, fixed
// when the file is compiled (tinyalex/cuda.py); loops are KERNEL_LOOP (tinyalex/cuda.py).

// One thread owns one output pixel (n, oy, ox) of one channel c and copies its k * k
// inputs into the k * k rows of cols; neighbouring threads write neighbouring columns.
extern "C" __global__ void im2col(const scalar_t* x, scalar_t* cols, int count, int batch, int channels,
                                  int height, int width, int out_h, int out_w, int k, int stride, int pad)
{
    KERNEL_LOOP(t, count) {   // t = ((c * batch + n) * out_h + oy) * out_w + ox
        int ox = t % out_w;
        int oy = (t / out_w) % out_h;
        int n = (t / (out_w * out_h)) % batch;
        int c = t / (out_w * out_h * batch);
        long long pixels = (long long)batch * out_h * out_w;          // columns of cols
        scalar_t* col = cols + (long long)c * k * k * pixels + ((long long)n * out_h + oy) * out_w + ox;
        const scalar_t* plane = x + ((long long)n * channels + c) * height * width;
        int y0 = oy * stride - pad, x0 = ox * stride - pad;
        for (int i = 0; i < k; ++i) {
            int y = y0 + i;
            for (int j = 0; j < k; ++j) {
                int x_ = x0 + j;
                bool inside = y >= 0 && y < height && x_ >= 0 && x_ < width;
                col[(i * k + j) * pixels] = inside ? plane[y * width + x_] : scalar_t(0);
            }
        }
    }
}

// The adjoint, as a gather: one thread owns one input pixel (n, c, y, x) and adds up the
// entries of cols that im2col copied from it, one per window that covers it. Every dx
// element is written by exactly one thread: no atomics, and the order of the sum is fixed.
// In padded coordinates (yp = y + pad) window oy covers rows oy*stride .. oy*stride + k - 1,
// so the windows covering row yp are oy_first .. oy_last below (likewise for columns).
extern "C" __global__ void col2im(const scalar_t* cols, scalar_t* dx, int count, int batch, int channels,
                                  int height, int width, int out_h, int out_w, int k, int stride, int pad)
{
    KERNEL_LOOP(t, count) {   // t = ((n * channels + c) * height + y) * width + x
        int x_ = t % width + pad;
        int y = (t / width) % height + pad;
        int c = (t / (width * height)) % channels;
        int n = t / (width * height * channels);
        long long pixels = (long long)batch * out_h * out_w;
        int oy_first = y < k ? 0 : (y - k) / stride + 1;
        int ox_first = x_ < k ? 0 : (x_ - k) / stride + 1;
        int oy_last = min(y / stride, out_h - 1);
        int ox_last = min(x_ / stride, out_w - 1);
        scalar_t sum = 0;
        for (int oy = oy_first; oy <= oy_last; ++oy) {
            int i = y - oy * stride;
            for (int ox = ox_first; ox <= ox_last; ++ox) {
                int j = x_ - ox * stride;
                sum += cols[((long long)(c * k + i) * k + j) * pixels + ((long long)n * out_h + oy) * out_w + ox];
            }
        }
        dx[t] = sum;
    }
}
