// Winograd's F(2x2, 3x3) convolution: the four transforms around its matrix products
// (tinyalex/layers/winograd.py explains the algorithm and holds the NumPy twin of each).
//
// The output is cut into 2 x 2 tiles, tiles_h x tiles_w of them per image; tile (ty, tx)
// reads the 4 x 4 input patch whose top-left corner is (2*ty - pad, 2*tx - pad), zero
// outside the image. The transformed arrays are 16 matrices, one per point xi = a*4 + b
// of the 4 x 4 tile, each with one row per channel and one column per tile of the batch:
//
//   V[xi][c][(n * tiles_h + ty) * tiles_w + tx]     transformed input,  V = BT d B
//   M[xi][o][(n * tiles_h + ty) * tiles_w + tx]     products U @ V; the output is AT M A
//
// Matrix xi starts at xi * plane_stride (winograd.py's ``planes`` says why that is not
// always rows * columns). Each transform applies a small constant matrix to the rows and
// then to the columns of a tile; the matrices, written out as the macros below, are
//
//   BT = [1  0 -1  0]      AT = [1  1  1  0]      (B and A are their transposes)
//        [0  1  1  0]           [0  1 -1 -1]
//        [0 -1  1  0]
//        [0  1  0 -1]
//
// scalar_t is float or double, fixed when the file is compiled; loops are KERNEL_LOOP
// (tinyalex/cuda.py).

#define BT_TIMES(v0, v1, v2, v3, out) { out[0] = (v0) - (v2); out[1] = (v1) + (v2); \
                                        out[2] = (v2) - (v1); out[3] = (v1) - (v3); }
#define B_TIMES(v0, v1, v2, v3, out)  { out[0] = (v0); out[1] = (v1) - (v2) + (v3); \
                                        out[2] = (v1) + (v2) - (v0); out[3] = -(v3); }
#define AT_TIMES(v0, v1, v2, v3, out) { out[0] = (v0) + (v1) + (v2); out[1] = (v1) - (v2) - (v3); }
#define A_TIMES(v0, v1, out)          { out[0] = (v0); out[1] = (v0) + (v1); out[2] = (v0) - (v1); out[3] = -(v1); }

// Tile t = ((plane * batch + n) * tiles_h + ty) * tiles_w + tx, for plane a channel of the
// input or of the output: the column of tile (n, ty, tx) in row `plane` of each matrix is t.
struct Tile {
    int plane, n, ty, tx;
    __device__ Tile(int t, int batch, int tiles_h, int tiles_w)
        : plane(t / (tiles_w * tiles_h * batch)), n((t / (tiles_w * tiles_h)) % batch),
          ty((t / tiles_w) % tiles_h), tx(t % tiles_w) {}
};

// V = BT d B for one tile: one thread per (channel, tile), 16 reads and 16 writes.
extern "C" __global__ void winograd_input(const scalar_t* x, scalar_t* V, int count, int plane_stride,
                                          int batch, int channels, int height, int width, int tiles_h,
                                          int tiles_w, int pad)
{
    KERNEL_LOOP(t, count) {
        Tile tile(t, batch, tiles_h, tiles_w);
        const scalar_t* image = x + ((long long)tile.n * channels + tile.plane) * height * width;
        int y0 = 2 * tile.ty - pad, x0 = 2 * tile.tx - pad;
        scalar_t d[4][4];
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) {
                int y = y0 + i, x_ = x0 + j;
                d[i][j] = (y >= 0 && y < height && x_ >= 0 && x_ < width) ? image[y * width + x_] : scalar_t(0);
            }
        scalar_t BTd[4][4], column[4], row[4];
        for (int j = 0; j < 4; ++j) {          // BT @ d, a column at a time
            BT_TIMES(d[0][j], d[1][j], d[2][j], d[3][j], column)
            for (int a = 0; a < 4; ++a) BTd[a][j] = column[a];
        }
        for (int a = 0; a < 4; ++a) {          // (BT @ d) @ B, a row at a time
            BT_TIMES(BTd[a][0], BTd[a][1], BTd[a][2], BTd[a][3], row)
            for (int b = 0; b < 4; ++b) V[(long long)(a * 4 + b) * plane_stride + t] = row[b];
        }
    }
}

// y = AT M A + bias for one tile: one thread per (output channel, tile), 16 reads and up
// to 4 writes (a tile that runs past the bottom or right edge writes only what is inside).
extern "C" __global__ void winograd_output(const scalar_t* M, const scalar_t* bias, scalar_t* y, int count,
                                           int plane_stride, int batch, int channels, int out_h, int out_w,
                                           int tiles_h, int tiles_w)
{
    KERNEL_LOOP(t, count) {
        Tile tile(t, batch, tiles_h, tiles_w);
        const scalar_t* m = M + t;             // m[xi * s]: point xi of this tile
        long long s = plane_stride;
        scalar_t ATm[2][4], column[2], row[2];
        for (int b = 0; b < 4; ++b) {          // AT @ m, a column at a time
            AT_TIMES(m[b * s], m[(4 + b) * s], m[(8 + b) * s], m[(12 + b) * s], column)
            ATm[0][b] = column[0];
            ATm[1][b] = column[1];
        }
        scalar_t* out = y + ((long long)tile.n * channels + tile.plane) * out_h * out_w;
        for (int p = 0; p < 2; ++p) {          // (AT @ m) @ A, a row at a time
            AT_TIMES(ATm[p][0], ATm[p][1], ATm[p][2], ATm[p][3], row)
            int oy = 2 * tile.ty + p;
            for (int q = 0; q < 2; ++q) {
                int ox = 2 * tile.tx + q;
                if (oy < out_h && ox < out_w) out[oy * out_w + ox] = row[q] + bias[tile.plane];
            }
        }
    }
}

// The adjoint of winograd_output (without the bias): dM = A dy AT for one tile, with dy
// zero past the edges. One thread per (output channel, tile), up to 4 reads, 16 writes.
extern "C" __global__ void winograd_output_adjoint(const scalar_t* dy, scalar_t* dM, int count, int plane_stride,
                                                   int batch, int channels, int out_h, int out_w, int tiles_h,
                                                   int tiles_w)
{
    KERNEL_LOOP(t, count) {
        Tile tile(t, batch, tiles_h, tiles_w);
        const scalar_t* grad = dy + ((long long)tile.n * channels + tile.plane) * out_h * out_w;
        scalar_t g[2][2];
        for (int p = 0; p < 2; ++p)
            for (int q = 0; q < 2; ++q) {
                int oy = 2 * tile.ty + p, ox = 2 * tile.tx + q;
                g[p][q] = (oy < out_h && ox < out_w) ? grad[oy * out_w + ox] : scalar_t(0);
            }
        scalar_t Ag[4][2], column[4], row[4];
        for (int q = 0; q < 2; ++q) {          // A @ g, a column at a time
            A_TIMES(g[0][q], g[1][q], column)
            for (int a = 0; a < 4; ++a) Ag[a][q] = column[a];
        }
        for (int a = 0; a < 4; ++a) {          // (A @ g) @ AT, a row at a time
            A_TIMES(Ag[a][0], Ag[a][1], row)
            for (int b = 0; b < 4; ++b) dM[(long long)(a * 4 + b) * plane_stride + t] = row[b];
        }
    }
}

// The adjoint of winograd_input: dd = B dV BT for one tile, added onto the tile's 4 x 4
// patch of dx (which starts at zero). Patches of neighbouring tiles overlap, but tiles two
// apart do not: each launch takes the tiles of one parity (ty % 2, tx % 2), so no two
// threads of a launch touch the same element, and four launches cover every tile.
extern "C" __global__ void winograd_input_adjoint(const scalar_t* dV, scalar_t* dx, int count, int plane_stride,
                                                  int batch, int channels, int height, int width, int tiles_h,
                                                  int tiles_w, int pad, int parity_y, int parity_x)
{
    int half_h = (tiles_h - parity_y + 1) / 2, half_w = (tiles_w - parity_x + 1) / 2;   // tiles of this parity
    KERNEL_LOOP(t, count) {
        Tile half(t, batch, half_h, half_w);   // the half.ty-th tile of this parity, and so on
        int ty = 2 * half.ty + parity_y, tx = 2 * half.tx + parity_x;
        long long column = (((long long)half.plane * batch + half.n) * tiles_h + ty) * tiles_w + tx;
        scalar_t g[4][4];
        for (int a = 0; a < 4; ++a)
            for (int b = 0; b < 4; ++b) g[a][b] = dV[(long long)(a * 4 + b) * plane_stride + column];
        scalar_t Bg[4][4], col[4], row[4];
        for (int b = 0; b < 4; ++b) {          // B @ g, a column at a time
            B_TIMES(g[0][b], g[1][b], g[2][b], g[3][b], col)
            for (int i = 0; i < 4; ++i) Bg[i][b] = col[i];
        }
        scalar_t* image = dx + ((long long)half.n * channels + half.plane) * height * width;
        for (int i = 0; i < 4; ++i) {          // (B @ g) @ BT, a row at a time, added onto the patch
            B_TIMES(Bg[i][0], Bg[i][1], Bg[i][2], Bg[i][3], row)
            int y = 2 * ty - pad + i;
            for (int j = 0; j < 4; ++j) {
                int x_ = 2 * tx - pad + j;
                if (y >= 0 && y < height && x_ >= 0 && x_ < width) image[y * width + x_] += row[j];
            }
        }
    }
}
