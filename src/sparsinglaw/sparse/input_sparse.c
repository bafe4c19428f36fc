/* Input-sparse projection y = W (x * keep) for a few tokens on CPU (float32), called through ctypes from
 * sparsinglaw/sparse/input_sparse.py.
 *
 * Input j is kept for token t when |x_tj| * w_j >= threshold (w = ||W[:, j]|| for the CETT rule, or NULL
 * for TEAL's plain |x_tj| >= threshold). W is given transposed, wt = W^T (d_in, d_out) row-major, so the
 * column of input j is one contiguous row: the kernel reads only the rows of inputs some token keeps, each
 * once per call (shared by the call's tokens), and prefetches the rows AHEAD inputs later.
 *
 * Returns the number of kept inputs in the union over tokens, or -1 without touching y when that exceeds
 * max_union (the caller then runs the dense product, which is faster there). index is a workspace of
 * d_in ints. y (n, d_out) must be zeroed by the caller. */
#include <math.h>
#include <stdint.h>

#define MAX_TOKENS 4
#define AHEAD 4

int64_t input_sparse_matvec(int n, int din, int dout, const float *restrict x, const float *restrict wt,
                            const float *restrict norms, float threshold, int max_union, int *restrict index,
                            float *restrict y) {
    if (n > MAX_TOKENS) return -2;
    int count = 0;
    for (int j = 0; j < din; j++) {
        float w = norms ? norms[j] : 1.0f;
        int keep = 0;
        for (int t = 0; t < n; t++) keep |= fabsf(x[(int64_t)t * din + j]) * w >= threshold;
        if (keep) {
            if (count >= max_union) return -1;
            index[count++] = j;
        }
    }
    for (int k = 0; k < count; k++) {
        if (k + AHEAD < count) {
            const float *next = wt + (int64_t)index[k + AHEAD] * dout;
            for (int c = 0; c < dout; c += 16) __builtin_prefetch(next + c, 0, 0);
        }
        int j = index[k];
        float w = norms ? norms[j] : 1.0f;
        const float *restrict row = wt + (int64_t)j * dout;
        for (int t = 0; t < n; t++) {
            float xv = x[(int64_t)t * din + j];
            if (!(fabsf(xv) * w >= threshold)) continue;
            float *restrict out = y + (int64_t)t * dout;
#pragma omp simd
            for (int c = 0; c < dout; c++) out[c] += xv * row[c];
        }
    }
    return count;
}
