/* Sparse FFN kernels for a few tokens on CPU (float32, row-major), called through ctypes from
 * sparsinglaw/sparse/native.py. They compute exactly what sparsinglaw/sparse/ffn.py's torch path computes
 * (see its docstring for the rule), without gathering weight rows into a copy and without the per-op
 * overhead of eager PyTorch, which dominate at batch size 1:
 *
 *   gated:     for each neuron i that is a candidate for some token (the caller passes the gate s = act(g)),
 *              u_ji = W_up[i] . x_j + b_i, h_ji = s_ji u_ji, and if |h_ji| ||W_down[:, i]|| >= t (any h_ji != 0
 *              when t == 0): y_j += h_ji W_down[:, i]. Rows of W_up and of W_down^T are read once per call
 *              (shared by the call's tokens) and the next candidate's rows are prefetched.
 *   non-gated: h is given; y_j += h_ji W_down[:, i] for the kept neurons.
 *
 * A neuron is a candidate for token j when s_ji != 0 and, for t > 0, the Cauchy-Schwarz bound
 * |s_ji| (||x_j|| ||W_up[i]|| ||W_down[:, i]|| + |b_i| ||W_down[:, i]||) >= t (1 - margin) holds.
 * Both return -1 without touching y when more than max_union neurons are candidates for some token
 * (the caller then runs the dense computation); else the number of kept (token, neuron) pairs with h != 0,
 * and *computed receives (candidate neurons) x (tokens), the pairs the torch path would compute. */
#include <math.h>
#include <stdint.h>

#define MAX_TOKENS 64

static inline float dot(const float *restrict a, const float *restrict b, int d) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int k = 0; k < d; k++) acc += a[k] * b[k];
    return acc;
}

static inline void axpy(float alpha, const float *restrict row, float *restrict y, int d) {
#pragma omp simd
    for (int k = 0; k < d; k++) y[k] += alpha * row[k];
}

static inline void prefetch_row(const float *row, int d) {
    for (int k = 0; k < d; k += 16) __builtin_prefetch(row + k, 0, 0);
}

/* Candidate neurons (union over tokens) into list; returns their number, or -1 above max_union. */
static int candidates(int n, int df, const float *s, const float *bound_scale, const float *bound_bias,
                      const float *xnorm, float t, float margin, int max_union, int32_t *list) {
    int count = 0;
    float floor_t = t * (1.0f - margin);
    for (int i = 0; i < df; i++) {
        int any = 0;
        for (int j = 0; j < n && !any; j++) {
            float sv = s[(int64_t)j * df + i];
            if (sv == 0.0f) continue;
            if (t <= 0.0f) { any = 1; break; }
            float bound = xnorm[j] * bound_scale[i] + (bound_bias ? bound_bias[i] : 0.0f);
            any = fabsf(sv) * bound >= floor_t;
        }
        if (any) {
            if (count >= max_union) return -1;
            list[count++] = i;
        }
    }
    return count;
}

int64_t sparse_gated_ffn(int n, int d, int df, const float *x, const float *s, const float *w_up,
                         const float *b_up, const float *wd_t, const float *norms, const float *bound_scale,
                         const float *bound_bias, const float *xnorm, float t, float margin, int max_union,
                         int32_t *list, float *y, int64_t *computed) {
    if (n > MAX_TOKENS) return -2;
    int count = candidates(n, df, s, bound_scale, bound_bias, xnorm, t, margin, max_union, list);
    if (count < 0) return -1;
    int64_t kept = 0;
    for (int c = 0; c < count; c++) {
        int i = list[c];
        if (c + 1 < count) {
            prefetch_row(w_up + (int64_t)list[c + 1] * d, d);
            prefetch_row(wd_t + (int64_t)list[c + 1] * d, d);
        }
        const float *up_row = w_up + (int64_t)i * d, *down_row = wd_t + (int64_t)i * d;
        for (int j = 0; j < n; j++) {
            float sv = s[(int64_t)j * df + i];
            if (sv == 0.0f) continue;
            float h = sv * (dot(up_row, x + (int64_t)j * d, d) + (b_up ? b_up[i] : 0.0f));
            if (h == 0.0f || (t > 0.0f && fabsf(h) * norms[i] < t)) continue;
            kept++;
            axpy(h, down_row, y + (int64_t)j * d, d);
        }
    }
    *computed = (int64_t)count * n;
    return kept;
}

int64_t sparse_down(int n, int d, int df, const float *h, const float *wd_t, const float *norms, float t,
                    int max_union, int32_t *list, float *y) {
    if (n > MAX_TOKENS) return -2;
    int count = 0;
    for (int i = 0; i < df; i++) {
        int any = 0;
        for (int j = 0; j < n && !any; j++) {
            float hv = h[(int64_t)j * df + i];
            any = hv != 0.0f && (t <= 0.0f || fabsf(hv) * norms[i] >= t);
        }
        if (any) {
            if (count >= max_union) return -1;
            list[count++] = i;
        }
    }
    int64_t kept = 0;
    for (int c = 0; c < count; c++) {
        int i = list[c];
        if (c + 1 < count) prefetch_row(wd_t + (int64_t)list[c + 1] * d, d);
        for (int j = 0; j < n; j++) {
            float hv = h[(int64_t)j * df + i];
            if (hv == 0.0f || (t > 0.0f && fabsf(hv) * norms[i] < t)) continue;
            kept++;
            axpy(hv, wd_t + (int64_t)i * d, y + (int64_t)j * d, d);
        }
    }
    return kept;
}
