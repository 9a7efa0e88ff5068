// Local response normalization across channels (paper, section 3.3), NCHW layout.
//
//   scale[n, c, y, x] = k + alpha * sum of x[n, j, y, x]^2 over j in [c - size/2, c + size/2]
//   out[n, c, y, x]   = x[n, c, y, x] * scale[n, c, y, x]^(-beta)
//
// scalar_t is float or double, fixed when the file is compiled (tinyalex/cuda.py), so the
// running sums have the precision of the arrays. Every kernel walks its elements with
// KERNEL_LOOP (a grid-stride loop on a GPU, the CPU's threads in tinyalex/native.py; see
// tinyalex/cuda.py) and uses no shared memory, so tinyalex/cuda_emulation.py can also run
// it thread by thread on a CPU.

// One thread owns one pixel (n, y, x) and walks down its channels with a sliding window:
// each step adds the channel entering the window and subtracts the one leaving it, so a
// pixel costs O(channels) whatever the window size.
extern "C" __global__ void lrn_fill_scale(const scalar_t* x, scalar_t* scale, int pixels, int channels,
                               int plane, int size, scalar_t alpha, scalar_t k)
{
    KERNEL_LOOP(p, pixels) {
        int n = p / plane, yx = p % plane;
        const scalar_t* x_p = x + (long long)n * channels * plane + yx;  // channel c is x_p[c * plane]
        scalar_t* scale_p = scale + (long long)n * channels * plane + yx;
        int half = size / 2;
        scalar_t sum = 0;
        for (int j = 0; j < half && j < channels; ++j) {
            sum += x_p[j * plane] * x_p[j * plane];
        }
        for (int c = 0; c < channels; ++c) {
            int entering = c + half, leaving = c - half - 1;
            if (entering < channels) sum += x_p[entering * plane] * x_p[entering * plane];
            if (leaving >= 0) sum -= x_p[leaving * plane] * x_p[leaving * plane];
            scale_p[c * plane] = k + alpha * sum;
        }
    }
}

// One thread owns one element i of the tensor.
extern "C" __global__ void lrn_output(const scalar_t* x, const scalar_t* scale, scalar_t* out, int count,
                           scalar_t beta)
{
    KERNEL_LOOP(i, count) {
        out[i] = x[i] * pow(scale[i], -beta);
    }
}

// Backward. Differentiating out[j] = x[j] * scale[j]^(-beta) gives
//   dx[c] = dout[c] * scale[c]^(-beta)
//           - 2 * alpha * beta * x[c] * sum over j in window(c) of dout[j] * out[j] / scale[j]
// (the window is symmetric, so c is in window(j) exactly when j is in window(c)).
// One thread owns one pixel (n, y, x) and slides the second sum down the channels.
extern "C" __global__ void lrn_backward(const scalar_t* x, const scalar_t* out, const scalar_t* scale,
                             const scalar_t* dout, scalar_t* dx, int pixels, int channels,
                             int plane, int size, scalar_t alpha, scalar_t beta)
{
    KERNEL_LOOP(p, pixels) {
        int n = p / plane, yx = p % plane;
        long long offset = (long long)n * channels * plane + yx;
        const scalar_t* x_p = x + offset;
        const scalar_t* out_p = out + offset;
        const scalar_t* scale_p = scale + offset;
        const scalar_t* dout_p = dout + offset;
        scalar_t* dx_p = dx + offset;
        int half = size / 2;
        scalar_t sum = 0;  // sum of dout * out / scale over the window
        for (int j = 0; j < half && j < channels; ++j) {
            sum += dout_p[j * plane] * out_p[j * plane] / scale_p[j * plane];
        }
        for (int c = 0; c < channels; ++c) {
            int entering = c + half, leaving = c - half - 1;
            if (entering < channels) {
                sum += dout_p[entering * plane] * out_p[entering * plane] / scale_p[entering * plane];
            }
            if (leaving >= 0) {
                sum -= dout_p[leaving * plane] * out_p[leaving * plane] / scale_p[leaving * plane];
            }
            dx_p[c * plane] = dout_p[c * plane] * pow(scale_p[c * plane], -beta)
                              - 2 * alpha * beta * x_p[c * plane] * sum;
        }
    }
}
