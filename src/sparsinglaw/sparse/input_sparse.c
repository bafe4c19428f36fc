/* Input-sparse projection y = W (x * keep) for a few tokens on CPU (float32), called through ctypes from
 * sparsinglaw/sparse/input_sparse.py.
 *
 * Input j is kept for token t when |x_tj| * w_j >= threshold (w = ||W[:, j]|| for the CETT rule, or NULL
 * for TEAL's plain |x_tj| >= threshold) and, when norms2 is not NULL, also |x_tj| * norms2_j >= threshold2
 * (the output rule of combined thresholds on a down projection: |h_i| * ||W_down[:, i]|| >= t_l). W is
 * given transposed, wt = W^T (d_in, d_out) row-major, so the column of input j is one contiguous row: the
 * kernel reads only the rows of inputs some token keeps, each once per call (shared by the call's tokens),
 * and prefetches the rows AHEAD inputs later.
 *
 * Returns the number of kept inputs in the union over tokens (and the kept (token, input) pairs in *pairs),
 * or -1 without touching y when the union exceeds max_union (the caller then runs the dense product, which
 * is faster there). index is a workspace of d_in ints. y (n, d_out) is zeroed here. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_TOKENS 4
#define AHEAD 4

typedef struct {
    const float *norms, *norms2;
    float threshold, threshold2;
} rule_t;

/* Everything of one projection that does not change between calls, filled once by the Python module: a
 * call then passes four arguments (ctypes converts each argument on every call, and at batch 1 SmolLM2 makes
 * 210 projection calls per token). pairs is written back by each call. */
typedef struct {
    int din, dout, max_union, pad;
    const float *wt, *norms, *norms2;
    float threshold, threshold2;
    int *index;
    int64_t pairs;
    float *masked; /* NULL, or (MAX_TOKENS, din): x * keep is written here for the dense fallback */
} projection_t;

static inline int kept(const rule_t *r, float xv, int j) {
    float a = fabsf(xv);
    if (!(a * (r->norms ? r->norms[j] : 1.0f) >= r->threshold)) return 0;
    return !r->norms2 || a * r->norms2[j] >= r->threshold2;
}

static int64_t matvec(int n, int din, int dout, const float *restrict x, const float *restrict wt, const rule_t *rule,
                      int max_union, int *restrict index, int64_t *pairs, float *restrict masked, float *restrict y) {
    if (n > MAX_TOKENS) return -2;
    int count = 0;
    int64_t kept_pairs = 0;
    for (int j = 0; j < din; j++) {
        int any = 0;
        for (int t = 0; t < n; t++) {
            float xv = x[(int64_t)t * din + j];
            int k = kept(rule, xv, j);
            any |= k;
            kept_pairs += k;
            if (masked) masked[(int64_t)t * din + j] = k ? xv : 0.0f;
        }
        if (any) {
            if (count >= max_union && !masked) return -1;
            if (count < din) index[count] = j;
            count++;
        }
    }
    *pairs = kept_pairs;
    if (count > max_union) return -1; /* with masked: the caller runs the dense product on it */
    for (int64_t c = 0; c < (int64_t)n * dout; c++) y[c] = 0.0f;
    /* Four kept rows per pass over each token's y: one axpy per row loads and stores y once per row, three
     * memory operations per multiply-add; four rows at a time halve that. A token that drops one of the
     * four inputs multiplies its row by 0 (the weights are finite, so the sum is the masked one). */
    int k = 0;
    for (; k + 4 <= count; k += 4) {
        for (int a = 4; a < 4 + AHEAD && k + a < count; a++) {
            const float *next = wt + (int64_t)index[k + a] * dout;
            for (int c = 0; c < dout; c += 16) __builtin_prefetch(next + c, 0, 0);
        }
        const float *restrict r0 = wt + (int64_t)index[k] * dout, *restrict r1 = wt + (int64_t)index[k + 1] * dout;
        const float *restrict r2 = wt + (int64_t)index[k + 2] * dout, *restrict r3 = wt + (int64_t)index[k + 3] * dout;
        for (int t = 0; t < n; t++) {
            float coef[4];
            int any = 0;
            for (int a = 0; a < 4; a++) {
                float xv = x[(int64_t)t * din + index[k + a]];
                coef[a] = kept(rule, xv, index[k + a]) ? xv : 0.0f;
                any |= coef[a] != 0.0f;
            }
            if (!any) continue;
            float *restrict out = y + (int64_t)t * dout;
            const float c0 = coef[0], c1 = coef[1], c2 = coef[2], c3 = coef[3];
#pragma omp simd
            for (int c = 0; c < dout; c++) out[c] += c0 * r0[c] + c1 * r1[c] + c2 * r2[c] + c3 * r3[c];
        }
    }
    for (; k < count; k++) {
        int j = index[k];
        const float *restrict row = wt + (int64_t)j * dout;
        for (int t = 0; t < n; t++) {
            float xv = x[(int64_t)t * din + j];
            if (!kept(rule, xv, j)) continue;
            float *restrict out = y + (int64_t)t * dout;
#pragma omp simd
            for (int c = 0; c < dout; c++) out[c] += xv * row[c];
        }
    }
    return count;
}

/* The call the Python module makes: y (n, d_out) need not be zeroed. Above max_union it returns -1 with
 * p->masked = x * keep and p->pairs set, so the fallback is one dense product. */
int64_t input_sparse_call(projection_t *p, int n, const float *x, float *y) {
    const rule_t rule = {p->norms, p->norms2, p->threshold, p->threshold2};
    return matvec(n, p->din, p->dout, x, p->wt, &rule, p->max_union, p->index, &p->pairs, p->masked, y);
}
