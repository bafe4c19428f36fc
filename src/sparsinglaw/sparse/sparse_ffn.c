/* Sparse FFN kernels for a few tokens on CPU (float32, row-major), called through ctypes from
 * sparsinglaw/sparse/native.py. They compute exactly what sparsinglaw/sparse/ffn.py's torch path computes
 * (see its docstring for the rule), without gathering weight rows into a copy and without the per-op
 * overhead of eager PyTorch, which dominate at batch size 1:
 *
 *   gated:     for each neuron i that is a candidate for some token (the caller passes the gate s = act(g)),
 *              u_ji = W_up[i] . x_j + b_i, h_ji = s_ji u_ji, and if |h_ji| ||W_down[:, i]|| >= t (any h_ji != 0
 *              when t == 0): y_j += h_ji W_down[:, i]. Rows of W_up and of W_down^T are read once per call
 *              (shared by the call's tokens) and the next candidate's rows are prefetched.
 *   gated ReLU (fused): as gated, but the gate is computed here too, block by block of BLOCK neurons, and
 *              the up/down rows of a block's candidates are prefetched while the next block's gate rows
 *              stream in, so the random row reads overlap the gate's sequential ones. Handles any density
 *              (it never reads more than the dense FFN), so it has no max_union. Optionally the gate is
 *              first screened with a float16 copy of W_gate (half the bytes of the largest read) and only
 *              neurons that may fire get their exact float32 gate row read (see may_fire for the bound).
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
/* Rows are prefetched this many candidates ahead: one row pair (6 KB at d = 768) in flight is not enough
 * to cover DRAM latency on random rows. */
#define AHEAD 4

/* Dot products of a weight row (float32, or float16 for the gate screen) with float32 x, accumulated in
 * float32. With AVX, F16C and FMA: four independent 8-lane accumulators, as a single one would make every
 * multiply-add wait for the previous one and the gate's dots latency- rather than memory-bound (gcc's own
 * vectorization of the float16 conversion loop also ran 4x slower). One body serves both weight types. */
#if defined(__F16C__) && defined(__FMA__) && defined(__AVX__)
#include <immintrin.h>
static inline __m256 load32(const float *p) { return _mm256_loadu_ps(p); }
static inline __m256 load16(const _Float16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
#define DEFINE_DOT(NAME, TYPE, LOAD)                                                                \
    static inline float NAME(const TYPE *restrict a, const float *restrict b, int d) {              \
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),             \
                         _mm256_setzero_ps()};                                                     \
        int k = 0;                                                                                  \
        for (; k + 32 <= d; k += 32)                                                                \
            for (int r = 0; r < 4; r++)                                                             \
                acc[r] = _mm256_fmadd_ps(LOAD(a + k + 8 * r), _mm256_loadu_ps(b + k + 8 * r), acc[r]); \
        float lanes[8], total = 0.0f;                                                               \
        _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))); \
        for (int l = 0; l < 8; l++) total += lanes[l];                                              \
        for (; k < d; k++) total += (float)a[k] * b[k];                                             \
        return total;                                                                               \
    }
#else
#define DEFINE_DOT(NAME, TYPE, LOAD)                                                                \
    static inline float NAME(const TYPE *restrict a, const float *restrict b, int d) {              \
        float acc[32] = {0.0f};                                                                     \
        int k = 0;                                                                                  \
        for (; k + 32 <= d; k += 32) {                                                              \
            _Pragma("omp simd")                                                                     \
            for (int l = 0; l < 32; l++) acc[l] += (float)a[k + l] * b[k + l];                      \
        }                                                                                           \
        float total = 0.0f;                                                                         \
        for (; k < d; k++) total += (float)a[k] * b[k];                                             \
        for (int l = 0; l < 32; l++) total += acc[l];                                               \
        return total;                                                                               \
    }
#endif
DEFINE_DOT(dot, float, load32)
DEFINE_DOT(dot16, _Float16, load16)

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
    for (int c = 0; c < AHEAD && c < count; c++) {
        prefetch_row(w_up + (int64_t)list[c] * d, d);
        prefetch_row(wd_t + (int64_t)list[c] * d, d);
    }
    for (int c = 0; c < count; c++) {
        int i = list[c];
        if (c + AHEAD < count) {
            prefetch_row(w_up + (int64_t)list[c + AHEAD] * d, d);
            prefetch_row(wd_t + (int64_t)list[c + AHEAD] * d, d);
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
    for (int c = 0; c < AHEAD && c < count; c++) prefetch_row(wd_t + (int64_t)list[c] * d, d);
    for (int c = 0; c < count; c++) {
        int i = list[c];
        if (c + AHEAD < count) prefetch_row(wd_t + (int64_t)list[c + AHEAD] * d, d);
        for (int j = 0; j < n; j++) {
            float hv = h[(int64_t)j * df + i];
            if (hv == 0.0f || (t > 0.0f && fabsf(hv) * norms[i] < t)) continue;
            kept++;
            axpy(hv, wd_t + (int64_t)i * d, y + (int64_t)j * d, d);
        }
    }
    return kept;
}

#define BLOCK 16

static inline int is_candidate(float sv, float xn, int i, const float *bound_scale, const float *bound_bias,
                               float t, float floor_t) {
    if (sv == 0.0f) return 0;
    if (t <= 0.0f) return 1;
    return fabsf(sv) * (xn * bound_scale[i] + (bound_bias ? bound_bias[i] : 0.0f)) >= floor_t;
}

/* The parts of one call, shared by the helpers below. */
typedef struct {
    int n, d;
    const float *x, *w_gate, *b_gate, *w_up, *b_up, *wd_t, *norms, *bound_scale, *bound_bias, *xnorm;
    const _Float16 *gate16;      /* optional half-precision copy of W_gate for screening, or NULL */
    const float *screen_slack;   /* per row: ||w_i - fp16(w_i)|| + (d + 2) 2^-24 ||fp16(w_i)||, times (1 + 1e-3) */
    float t, floor_t;
} Call;

/* Exact s = relu(W_gate[i] . x_j + b_i) for every token into slot; 1 if neuron i is a candidate. */
static int exact_gate(const Call *c, int i, float *slot) {
    const float *row = c->w_gate + (int64_t)i * c->d;
    int any = 0;
    for (int j = 0; j < c->n; j++) {
        float g = dot(row, c->x + (int64_t)j * c->d, c->d) + (c->b_gate ? c->b_gate[i] : 0.0f);
        slot[j] = g > 0.0f ? g : 0.0f;
        any |= is_candidate(slot[j], c->t > 0.0f ? c->xnorm[j] : 0.0f, i, c->bound_scale, c->bound_bias, c->t,
                            c->floor_t);
    }
    return any;
}

/* Screening with the half-precision gate. |dot16 - dot| <= slack_i ||x_j||: Cauchy-Schwarz on the weights'
 * rounding, ||w - fp16(w)|| ||x||, plus both float32 accumulation errors, <= 2 gamma_d ||w|| ||x|| (the slack
 * is computed in sparse/native.py); 1e-6 |b| covers adding the bias. So g16 + slack ||x|| <= 0 proves that
 * the exact gate is <= 0 and relu(g) = 0: skipping the neuron changes nothing. */
static int may_fire(const Call *c, int i) {
    const _Float16 *row = c->gate16 + (int64_t)i * c->d;
    float bias = c->b_gate ? c->b_gate[i] : 0.0f;
    for (int j = 0; j < c->n; j++) {
        float g16 = dot16(row, c->x + (int64_t)j * c->d, c->d) + bias;
        if (g16 + c->screen_slack[i] * c->xnorm[j] + 1e-6f * fabsf(bias) > 0.0f) return 1;
    }
    return 0;
}

/* Phase A for neurons [i0, i1): the neurons that need phase B go to idx (with exact s in sv unless the gate
 * is screened in half precision, where phase B computes it), and their rows are prefetched. */
static int scan_block(const Call *c, int i0, int i1, int *idx, float *sv) {
    int count = 0;
    for (int i = i0; i < i1; i++) {
        int keep = c->gate16 ? may_fire(c, i) : exact_gate(c, i, sv + count * MAX_TOKENS);
        if (!keep) continue;
        idx[count++] = i;
        if (c->gate16) prefetch_row(c->w_gate + (int64_t)i * c->d, c->d);
        prefetch_row(c->w_up + (int64_t)i * c->d, c->d);
        prefetch_row(c->wd_t + (int64_t)i * c->d, c->d);
    }
    return count;
}

/* Phase B for one neuron: up projection and down accumulation for the tokens that keep it. */
static int64_t finish_neuron(const Call *c, int i, const float *slot, float *y) {
    const float *up_row = c->w_up + (int64_t)i * c->d, *down_row = c->wd_t + (int64_t)i * c->d;
    int64_t kept = 0;
    for (int j = 0; j < c->n; j++) {
        float s = slot[j];
        if (s == 0.0f) continue;
        float h = s * (dot(up_row, c->x + (int64_t)j * c->d, c->d) + (c->b_up ? c->b_up[i] : 0.0f));
        if (h == 0.0f || (c->t > 0.0f && fabsf(h) * c->norms[i] < c->t)) continue;
        kept++;
        axpy(h, down_row, y + (int64_t)j * c->d, c->d);
    }
    return kept;
}

int64_t sparse_gated_relu_ffn(int n, int d, int df, const float *x, const float *w_gate, const float *b_gate,
                              const float *w_up, const float *b_up, const float *wd_t, const float *norms,
                              const float *bound_scale, const float *bound_bias, const float *xnorm,
                              const _Float16 *gate16, const float *screen_slack, float t, float margin, float *y,
                              int64_t *computed) {
    if (n > MAX_TOKENS) return -2;
    Call c = {n, d, x, w_gate, b_gate, w_up, b_up, wd_t, norms, bound_scale, bound_bias, xnorm, gate16,
              screen_slack, t, t * (1.0f - margin)};
    float sv[2][BLOCK * MAX_TOKENS];
    int idx[2][BLOCK], count[2] = {0, 0};
    int64_t kept = 0, union_count = 0;
    int blocks = (df + BLOCK - 1) / BLOCK, cur = 0;
    for (int b = 0; b <= blocks; b++) {
        if (b < blocks) {
            int i0 = b * BLOCK, i1 = i0 + BLOCK < df ? i0 + BLOCK : df;
            count[cur] = scan_block(&c, i0, i1, idx[cur], sv[cur]);
        }
        int prev = cur ^ 1;  /* the previous block's neurons, whose rows have had time to arrive */
        for (int k = 0; k < count[prev]; k++) {
            float *slot = sv[prev] + k * MAX_TOKENS;
            if (gate16 && !exact_gate(&c, idx[prev][k], slot)) continue;  /* screened in, but not a candidate */
            union_count++;
            kept += finish_neuron(&c, idx[prev][k], slot, y);
        }
        count[prev] = 0;
        cur = prev;
    }
    *computed = union_count * n;
    return kept;
}
