/* Measurement kernels for CETT statistics and thresholded sparse passes (float32, row-major), called through
 * ctypes from sparsinglaw/metrics/kernels.py. Each computes exactly what the PyTorch code next to its caller
 * computes (metrics/cett.py, measure.py), in one pass over h instead of the 6-10 full-size temporaries that
 * eager PyTorch makes per FFN call: on SmolLM2 those elementwise passes cost about half a forward per
 * statistics pass and 5-9% of every sparse pass.
 *
 *   grid_stats:     per token, magnitudes m_i = |h_i| ||W_down[:, i]||, their squares binned on a geometric grid
 *                   (bin = number of grid points <= m, so bin b holds grid[b-1] <= m < grid[b]), the cumulative
 *                   sums give the proxy CETT sqrt(sum_{m_i < grid[k]} m_i^2) / ||y|| at every grid point k,
 *                   summed over tokens; also the dropped counts per grid point, the full proxy and max m.
 *   masked_copies:  the K copies h * (m < t_k) the exact anchors multiply by W_down^T.
 *   anchor_dropped_norms: the exact anchors themselves, || sum_{m_i < t_k} h_i W_down[:, i] || for K nested
 *                   thresholds, touching each dropped (token, neuron) pair once instead of K dense matmuls.
 *   threshold_apply: h_i = 0 where m_i < t (in place), per-token kept counts, per-neuron kept counts.
 */
/* Without this gcc keeps the bin loop scalar (its clamps could raise FP exceptions, which we never trap);
 * 13x slower. Clang assumes it by default. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#else  /* built without an OpenMP runtime (native_build.SERIAL_FLAGS): one thread */
static int omp_get_max_threads(void) { return 1; }
static int omp_get_thread_num(void) { return 0; }
static int omp_get_num_threads(void) { return 1; }
#endif
#include <stdint.h>
#if (defined(__AVX2__) && defined(__FMA__)) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

/* The OpenMP threads a kernel splits n rows over: at most PyTorch's count, and at least min_rows each (below
 * that a thread's start costs more than its share of the work). */
static int team_size(int n, int min_rows) {
    int threads = omp_get_max_threads(), most = n / min_rows;
    return most < 1 ? 1 : (threads < most ? threads : most);
}

/* Natural log of a positive normal float, within 2e-6 absolute: exponent * ln 2 plus the atanh series of the
 * mantissa m in [1, 2) (s = (m - 1) / (m + 1) < 1/3, five terms). Branch-free, so the bin loop vectorizes;
 * libm's log made the kernel slower than PyTorch's vectorized one. A bin is off only for magnitudes within
 * 2e-6 relative of a grid point, which moves the proxy (itself an approximation that the exact anchors
 * correct) by nothing measurable. */
static inline float fast_log(float x) {
    union { float f; uint32_t i; } u = {x};
    float exponent = (float)((int)((u.i >> 23) & 0xff) - 127);
    u.i = (u.i & 0x7fffffu) | 0x3f800000u;
    float s = (u.f - 1.0f) / (u.f + 1.0f), s2 = s * s;
    float series = s * (2.0f + s2 * (2.0f / 3 + s2 * (2.0f / 5 + s2 * (2.0f / 7 + s2 * (2.0f / 9)))));
    return exponent * 0.69314718f + series;
}

/* Bin of magnitude m on the grid exp(log_lo + k step), k = 0..points-1: floor((log m - log_lo) / step) + 1,
 * clamped to [0, points]; zeros (and subnormals) go to bin 0, below every grid point. */
static inline int grid_bin(float m, float log_lo, float inv_step, int points) {
    float position = (fast_log(m) - log_lo) * inv_step;
    position = position < -1.0f ? -1.0f : (position > (float)points ? (float)points : position);
    int bin = (int)(position + 1.0f);  /* truncation of a non-negative value: floor(position) + 1 */
    bin = bin > points ? points : bin;
    return m >= 1.17549435e-38f ? bin : 0;
}

/* Row j's contribution: proxy CETT at every grid point added to proxy, its bins' counts to counts, its full
 * proxy returned; *top raised to its largest magnitude. Scratch: squares (points + 1), bins and m2 (df). */
static double grid_row(int df, const float *row, const float *norms, float y, float lo, float inv, int points,
                       double *squares, int *bins, float *m2, double *proxy, int64_t *counts, float *top) {
    memset(squares, 0, sizeof(double) * (points + 1));
    float row_top = *top;
#pragma omp simd reduction(max : row_top)
    for (int i = 0; i < df; i++) {  /* vectorized: magnitudes and their bins */
        float m = fabsf(row[i]) * norms[i];
        bins[i] = grid_bin(m, lo, inv, points);
        m2[i] = m * m;
        row_top = m > row_top ? m : row_top;
    }
    *top = row_top;
    double all = 0.0;
    for (int i = 0; i < df; i++) {  /* scalar: the scatter */
        squares[bins[i]] += m2[i];
        counts[bins[i]]++;
        all += m2[i];
    }
    if (!(y > 0.0f)) return 0.0;
    double cumulative = 0.0, inv_y = 1.0 / y;
    for (int k = 0; k < points; k++) {
        cumulative += squares[k];
        proxy[k] += sqrt(cumulative) * inv_y;
    }
    return sqrt(all) * inv_y;
}

/* One thread's share of grid_stats: its sums, added up in thread order at the end (a fixed order, so the
 * result does not depend on which thread finished first). */
typedef struct {
    double *proxy, full;
    int64_t *counts;
    float top;
    int failed;
} grid_part;

/* Returns 0, or -1 if scratch could not be allocated. proxy_sum and dropped_count (points doubles each) are
 * accumulated into; *full_proxy_sum is added to; *max_magnitude is raised. y_norm[j] == 0 tokens add 0. The
 * rows are split over the OpenMP threads PyTorch uses (the same runtime: one pool, no second set of threads
 * competing with its spinning workers, which cost the Python-thread split 1.5x on 2 cores). */
int grid_stats(int n, int df, const float *h, const float *norms, const float *y_norm, double log_lo,
               double inv_step, int points, double *proxy_sum, double *dropped_count, double *full_proxy_sum,
               float *max_magnitude) {
    int threads = team_size(n, 64);  /* ~4 us a row on SmolLM2 */
    grid_part *parts = calloc(threads, sizeof(grid_part));
    if (!parts) return -1;
    float lo = (float)log_lo, inv = (float)inv_step;
    int used = 1;  /* the team OpenMP gave (at most threads) */
#pragma omp parallel num_threads(threads)
    {
        int me = omp_get_thread_num(), team = omp_get_num_threads();
        if (me == 0) used = team;
        grid_part *part = parts + me;
        double *squares = malloc(sizeof(double) * (points + 1));
        int *bins = malloc(sizeof(int) * df);
        float *m2 = malloc(sizeof(float) * df);
        part->proxy = calloc(points, sizeof(double));
        part->counts = calloc(points + 1, sizeof(int64_t));
        part->top = *max_magnitude;
        part->failed = !squares || !bins || !m2 || !part->proxy || !part->counts;
        int start = (int)((int64_t)n * me / team), stop = (int)((int64_t)n * (me + 1) / team);
        for (int j = start; j < stop && !part->failed; j++)
            part->full += grid_row(df, h + (int64_t)j * df, norms, y_norm[j], lo, inv, points, squares, bins, m2,
                                   part->proxy, part->counts, &part->top);
        free(squares), free(bins), free(m2);
    }
    int failed = 0;
    for (int p = 0; p < used; p++) {
        grid_part *part = parts + p;
        failed |= part->failed;  /* set when any of its scratch or sums could not be allocated */
        if (failed) continue;
        int64_t below = 0;
        for (int k = 0; k < points; k++) {
            proxy_sum[k] += part->proxy[k];
            below += part->counts[k];
            dropped_count[k] += (double)below;
        }
        *full_proxy_sum += part->full;
        *max_magnitude = part->top > *max_magnitude ? part->top : *max_magnitude;
    }
    for (int p = 0; p < threads; p++) free(parts[p].proxy), free(parts[p].counts);
    free(parts);
    return failed ? -1 : 0;
}

/* out[k][j][i] = m_ji < t_k ? h_ji : 0 for K thresholds; out is (K, n, df). */
void masked_copies(int n, int df, const float *h, const float *norms, int k_count, const float *thresholds,
                   float *out) {
    int64_t plane = (int64_t)n * df;
    for (int j = 0; j < n; j++) {
        const float *row = h + (int64_t)j * df;
        for (int k = 0; k < k_count; k++) {
            float *dst = out + k * plane + (int64_t)j * df, t = thresholds[k];
#pragma omp simd
            for (int i = 0; i < df; i++) dst[i] = fabsf(row[i]) * norms[i] < t ? row[i] : 0.0f;
        }
    }
}

/* Exact anchors: out[k][j] = || sum_{i: m_ji < t_k} h_ji wt[i, :] || for K ascending thresholds, wt = W_down^T
 * (df, d) row-major, out (K, n). The dropped sets are nested (dropped at t_k means dropped at every larger t),
 * so each token's dropped neurons fall into bands by the first threshold that drops them, and anchor k's
 * vector is the running sum over bands 0..k: a dropped pair costs one d-long multiply-add, where the K masked
 * matmuls cost K per pair, dropped or not. Tiling: A_TOKENS tokens x A_NEURONS neurons at a time and A_CHUNK
 * outputs at a time, so the tile's A_NEURONS x A_CHUNK slice of wt (16 KB) stays in L1 while every token's
 * pairs use it, and the running sums stay in registers. Zeros contribute nothing and are skipped. On SmolLM2's
 * shapes (d_f 1536, d 576, 512 tokens, 5 anchors, 72% of pairs dropped at the top one) it took about half the
 * time of PyTorch's 5 matmuls, on 1 or 2 threads; it is bound by loading the weight rows (one 64-float row
 * slice per pair and chunk: 8 vector loads for 8 multiply-adds), which larger tiles, 12 accumulators or packed
 * weight tiles did not change. With AVX-512 the sums of 128 outputs live in 8 zmm registers (one run through
 * a token's lists per 128 outputs instead of two) and vcompress sorts the bands in registers: on a Xeon with
 * AVX-512, SmolLM2's 30 layers on 512 tokens took 0.375 s instead of the AVX2 path's 0.47 s (1 thread; the
 * band sorting is 0.06 s of it, the rest the multiply-adds). A block is 64 tokens, not 16: each block
 * streams all of wt once, and inside a forward pass (whose weights evict wt from cache) that cost the
 * statistics pass on 4,096 tokens 1.35 plain forwards instead of 1.30 (2 threads; alike in isolation).
 * Token blocks are dealt to PyTorch's OpenMP threads. Returns 0; -1 when scratch memory could not be
 * allocated, -2 for more than A_MAXK thresholds. */
#define A_TOKENS 64
#define A_NEURONS 64
#define A_CHUNK 64
#define A_MAXK 8

typedef struct {  /* one tile's dropped pairs per token and band (+16: compaction writes up to 16 past the end) */
    int count[A_TOKENS][A_MAXK];
    int index[A_TOKENS][A_MAXK][A_NEURONS + 16];
    float value[A_TOKENS][A_MAXK][A_NEURONS + 16];
} band_lists;

#if defined(__AVX2__) && defined(__FMA__)
/* pack_order[mask] lists the set bits of an 8-bit mask first: the permutation that packs the selected lanes of
 * a vector to its front (AVX2 has no compress instruction). */
static int32_t pack_order[256][8];
__attribute__((constructor)) static void build_pack_order(void) {
    for (int mask = 0; mask < 256; mask++) {
        int c = 0;
        for (int bit = 0; bit < 8; bit++)
            if (mask >> bit & 1) pack_order[mask][c++] = bit;
        while (c < 8) pack_order[mask][c++] = 0;
    }
}
#endif

/* Append the pairs of ``row[0 : width]`` whose band is b (their neuron indexes offset by i0) to index/value;
 * returns how many. Branch-free: always write, advance only on a match (eight at a time with AVX2). */
static int compact_band(const int *band, const float *row, int width, int b, int i0, int *index, float *value) {
    int c = 0, i = 0;
#if defined(__AVX2__) && defined(__FMA__)
    const __m256i wanted = _mm256_set1_epi32(b);
    for (; i + 8 <= width; i += 8) {
        __m256i bands = _mm256_loadu_si256((const __m256i *)(band + i));
        int mask = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(bands, wanted)));
        __m256i order = _mm256_loadu_si256((const __m256i *)pack_order[mask]);
        _mm256_storeu_si256((__m256i *)(index + c), _mm256_add_epi32(order, _mm256_set1_epi32(i0 + i)));
        _mm256_storeu_ps(value + c, _mm256_permutevar8x32_ps(_mm256_loadu_ps(row + i), order));
        c += __builtin_popcount(mask);
    }
#endif
    for (; i < width; i++) {
        index[c] = i0 + i;
        value[c] = row[i];
        c += band[i] == b;
    }
    return c;
}

/* Sort one tile's pairs into per-token band lists. Branch-free (a pair's band is unpredictable): bands are
 * computed for the whole row, then each band's list is compacted by always writing and advancing only on a
 * match. */
static void band_tile(band_lists *lists, int tokens, int df, int i0, int width, const float *h,
                      const float *norms, int k_count, const float *thresholds) {
#if defined(__AVX512F__)
    if (width == A_NEURONS) {  /* full tiles: bands stay in registers and vcompress packs each band's lanes */
        const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (int t = 0; t < tokens; t++) {
            const float *row = h + (int64_t)t * df + i0;
            int count[A_MAXK] = {0};
            for (int i = 0; i < A_NEURONS; i += 16) {
                __m512 v = _mm512_loadu_ps(row + i);
                __m512 m = _mm512_mul_ps(_mm512_abs_ps(v), _mm512_loadu_ps(norms + i0 + i));
                __m512i band = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
                for (int k = 0; k < k_count; k++) {  /* band = number of thresholds <= m */
                    __mmask16 kept = _mm512_cmp_ps_mask(m, _mm512_set1_ps(thresholds[k]), _CMP_NLT_UQ);
                    band = _mm512_mask_add_epi32(band, kept, band, one);
                }
                __mmask16 zero = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_EQ_OQ);
                band = _mm512_mask_mov_epi32(band, zero, _mm512_set1_epi32(k_count));
                __m512i index = _mm512_add_epi32(lanes, _mm512_set1_epi32(i0 + i));
                for (int b = 0; b < k_count; b++) {
                    __mmask16 in = _mm512_cmpeq_epi32_mask(band, _mm512_set1_epi32(b));
                    int c = count[b];
                    _mm512_storeu_si512((void *)(lists->index[t][b] + c), _mm512_maskz_compress_epi32(in, index));
                    _mm512_storeu_ps(lists->value[t][b] + c, _mm512_maskz_compress_ps(in, v));
                    count[b] = c + __builtin_popcount(in);
                }
            }
            for (int b = 0; b < k_count; b++) lists->count[t][b] = count[b];
        }
        return;
    }
#endif
    int band[A_NEURONS];
    float m[A_NEURONS];
    for (int t = 0; t < tokens; t++) {
        const float *row = h + (int64_t)t * df + i0;
        for (int i = 0; i < width; i++) {
            m[i] = fabsf(row[i]) * norms[i0 + i];
            band[i] = 0;
        }
        for (int k = 0; k < k_count; k++) {
            float level = thresholds[k];
            for (int i = 0; i < width; i++) band[i] += !(m[i] < level);
        }
        for (int i = 0; i < width; i++) band[i] = row[i] == 0.0f ? k_count : band[i];
        for (int b = 0; b < k_count; b++)
            lists->count[t][b] = compact_band(band, row, width, b, i0, lists->index[t][b], lists->value[t][b]);
    }
}

/* For one token and one full chunk of outputs: run through bands 0..K-1 accumulating value * wt[index, c0 :
 * c0 + A_CHUNK], adding the running sum into acc[b] after each band. With AVX2 the 64 sums live in 8 vector
 * registers (gcc kept a plain array on the stack: 4x slower); a portable loop otherwise. */
static void token_chunk(const band_lists *lists, int t, int k_count, int d, int c0, const float *wt, float *acc) {
#if defined(__AVX512F__) && A_CHUNK == 64
    __m512 r0 = _mm512_setzero_ps(), r1 = r0, r2 = r0, r3 = r0;
    for (int b = 0; b < k_count; b++) {
        const int *index = lists->index[t][b];
        const float *value = lists->value[t][b];
        for (int p = 0; p < lists->count[t][b]; p++) {
            const float *w = wt + (int64_t)index[p] * d + c0;
            __m512 v = _mm512_set1_ps(value[p]);
            r0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w), r0);
            r1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 16), r1);
            r2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 32), r2);
            r3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 48), r3);
        }
        float *a = acc + (int64_t)b * d + c0;
        _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), r0));
        _mm512_storeu_ps(a + 16, _mm512_add_ps(_mm512_loadu_ps(a + 16), r1));
        _mm512_storeu_ps(a + 32, _mm512_add_ps(_mm512_loadu_ps(a + 32), r2));
        _mm512_storeu_ps(a + 48, _mm512_add_ps(_mm512_loadu_ps(a + 48), r3));
    }
#elif defined(__AVX2__) && defined(__FMA__) && A_CHUNK == 64
    __m256 r0 = _mm256_setzero_ps(), r1 = r0, r2 = r0, r3 = r0, r4 = r0, r5 = r0, r6 = r0, r7 = r0;
    for (int b = 0; b < k_count; b++) {
        const int *index = lists->index[t][b];
        const float *value = lists->value[t][b];
        for (int p = 0; p < lists->count[t][b]; p++) {
            const float *w = wt + (int64_t)index[p] * d + c0;
            __m256 v = _mm256_set1_ps(value[p]);
            r0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w), r0);
            r1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 8), r1);
            r2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 16), r2);
            r3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 24), r3);
            r4 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 32), r4);
            r5 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 40), r5);
            r6 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 48), r6);
            r7 = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + 56), r7);
        }
        float *a = acc + (int64_t)b * d + c0;
        _mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a), r0));
        _mm256_storeu_ps(a + 8, _mm256_add_ps(_mm256_loadu_ps(a + 8), r1));
        _mm256_storeu_ps(a + 16, _mm256_add_ps(_mm256_loadu_ps(a + 16), r2));
        _mm256_storeu_ps(a + 24, _mm256_add_ps(_mm256_loadu_ps(a + 24), r3));
        _mm256_storeu_ps(a + 32, _mm256_add_ps(_mm256_loadu_ps(a + 32), r4));
        _mm256_storeu_ps(a + 40, _mm256_add_ps(_mm256_loadu_ps(a + 40), r5));
        _mm256_storeu_ps(a + 48, _mm256_add_ps(_mm256_loadu_ps(a + 48), r6));
        _mm256_storeu_ps(a + 56, _mm256_add_ps(_mm256_loadu_ps(a + 56), r7));
    }
#else
    float r[A_CHUNK] = {0};
    for (int b = 0; b < k_count; b++) {
        for (int p = 0; p < lists->count[t][b]; p++) {
            const float *w = wt + (int64_t)lists->index[t][b][p] * d + c0;
            float v = lists->value[t][b][p];
#pragma omp simd
            for (int q = 0; q < A_CHUNK; q++) r[q] += v * w[q];
        }
        float *a = acc + (int64_t)b * d + c0;
        for (int q = 0; q < A_CHUNK; q++) a[q] += r[q];
    }
#endif
}

#if defined(__AVX512F__)
/* AVX-512: two chunks (128 outputs) per run through the lists, the sums in 8 zmm registers: half the list
 * reads and pointer work per multiply-add of the 64-wide chunk. */
#define A_WIDE 128
static void token_wide(const band_lists *lists, int t, int k_count, int d, int c0, const float *wt, float *acc) {
    __m512 r0 = _mm512_setzero_ps(), r1 = r0, r2 = r0, r3 = r0, r4 = r0, r5 = r0, r6 = r0, r7 = r0;
    for (int b = 0; b < k_count; b++) {
        const int *index = lists->index[t][b];
        const float *value = lists->value[t][b];
        for (int p = 0; p < lists->count[t][b]; p++) {
            const float *w = wt + (int64_t)index[p] * d + c0;
            __m512 v = _mm512_set1_ps(value[p]);
            r0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w), r0);
            r1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 16), r1);
            r2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 32), r2);
            r3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 48), r3);
            r4 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 64), r4);
            r5 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 80), r5);
            r6 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 96), r6);
            r7 = _mm512_fmadd_ps(v, _mm512_loadu_ps(w + 112), r7);
        }
        float *a = acc + (int64_t)b * d + c0;
        _mm512_storeu_ps(a, _mm512_add_ps(_mm512_loadu_ps(a), r0));
        _mm512_storeu_ps(a + 16, _mm512_add_ps(_mm512_loadu_ps(a + 16), r1));
        _mm512_storeu_ps(a + 32, _mm512_add_ps(_mm512_loadu_ps(a + 32), r2));
        _mm512_storeu_ps(a + 48, _mm512_add_ps(_mm512_loadu_ps(a + 48), r3));
        _mm512_storeu_ps(a + 64, _mm512_add_ps(_mm512_loadu_ps(a + 64), r4));
        _mm512_storeu_ps(a + 80, _mm512_add_ps(_mm512_loadu_ps(a + 80), r5));
        _mm512_storeu_ps(a + 96, _mm512_add_ps(_mm512_loadu_ps(a + 96), r6));
        _mm512_storeu_ps(a + 112, _mm512_add_ps(_mm512_loadu_ps(a + 112), r7));
    }
}
#else
#define A_WIDE 0
#endif

/* The same for a last, partial chunk of ``width`` outputs (when d is not a multiple of A_CHUNK). */
static void token_tail(const band_lists *lists, int t, int k_count, int d, int c0, int width, const float *wt,
                       float *acc) {
    float r[A_CHUNK] = {0};
    for (int b = 0; b < k_count; b++) {
        for (int p = 0; p < lists->count[t][b]; p++) {
            const float *w = wt + (int64_t)lists->index[t][b][p] * d + c0;
            float v = lists->value[t][b][p];
            for (int q = 0; q < width; q++) r[q] += v * w[q];
        }
        float *a = acc + (int64_t)b * d + c0;
        for (int q = 0; q < width; q++) a[q] += r[q];
    }
}

/* Rows j0 .. j0 + tokens of anchor_dropped_norms (one token block), with one thread's scratch. */
static void anchor_block(int n, int j0, int tokens, int df, int d, const float *h, const float *norms,
                         int k_count, const float *thresholds, const float *wt, float *acc, band_lists *lists,
                         float *out) {
    memset(acc, 0, sizeof(float) * A_TOKENS * k_count * d);
    for (int i0 = 0; i0 < df; i0 += A_NEURONS) {
        int width = df - i0 < A_NEURONS ? df - i0 : A_NEURONS;
        band_tile(lists, tokens, df, i0, width, h + (int64_t)j0 * df, norms, k_count, thresholds);
        for (int c0 = 0; c0 < d;) {
            int step = A_WIDE && d - c0 >= A_WIDE ? A_WIDE : (d - c0 >= A_CHUNK ? A_CHUNK : d - c0);
            for (int t = 0; t < tokens; t++) {
                float *token_acc = acc + (int64_t)t * k_count * d;
#if defined(__AVX512F__)
                if (step == A_WIDE) {
                    token_wide(lists, t, k_count, d, c0, wt, token_acc);
                    continue;
                }
#endif
                if (step == A_CHUNK) token_chunk(lists, t, k_count, d, c0, wt, token_acc);
                else token_tail(lists, t, k_count, d, c0, step, wt, token_acc);
            }
            c0 += step;
        }
    }
    for (int t = 0; t < tokens; t++)
        for (int k = 0; k < k_count; k++) {
            const float *a = acc + ((int64_t)t * k_count + k) * d;
            double squares = 0.0;
            for (int q = 0; q < d; q++) squares += (double)a[q] * a[q];
            out[(int64_t)k * n + j0 + t] = (float)sqrt(squares);
        }
}

/* Token blocks are split over PyTorch's OpenMP threads (see grid_stats), each with its own scratch. */
int anchor_dropped_norms(int n, int df, int d, const float *h, const float *norms, int k_count,
                         const float *thresholds, const float *wt, float *out) {
    if (k_count < 1 || k_count > A_MAXK) return -2;
    int failed = 0, blocks = (n + A_TOKENS - 1) / A_TOKENS;
    int threads = team_size(n, A_TOKENS);  /* ~25 us a row on SmolLM2: one block a thread is worth it */
    (void)threads;  /* unused when built without OpenMP */
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *acc = malloc(sizeof(float) * A_TOKENS * k_count * d);  /* anchor sums of the token block */
        band_lists *lists = malloc(sizeof(band_lists));
        failed = !acc || !lists;
#pragma omp for schedule(static)
        for (int b = 0; b < blocks; b++) {
            int j0 = b * A_TOKENS, tokens = n - j0 < A_TOKENS ? n - j0 : A_TOKENS;
            if (acc && lists) anchor_block(n, j0, tokens, df, d, h, norms, k_count, thresholds, wt, acc, lists, out);
        }
        free(acc), free(lists);
    }
    return failed ? -1 : 0;
}

/* In place: h_ji = 0 unless |h_ji| norms_i >= t (the CETT rule; t = 0 keeps everything, zeros included, and a
 * kept zero counts as kept, as in the mask the PyTorch rule makes). token_kept[j] receives the kept count of
 * token j; neuron_kept[i] (may be NULL) is added the kept count of neuron i. Returns the total kept. */
int64_t threshold_apply(int n, int df, float *h, const float *norms, float t, float *token_kept,
                        double *neuron_kept) {
    int64_t total = 0;
    for (int j = 0; j < n; j++) {
        float *row = h + (int64_t)j * df;
        int kept = 0;
#pragma omp simd reduction(+ : kept)
        for (int i = 0; i < df; i++) {
            int keep = fabsf(row[i]) * norms[i] >= t;
            kept += keep;
            row[i] = keep ? row[i] : 0.0f;
        }
        if (neuron_kept)
            for (int i = 0; i < df; i++) neuron_kept[i] += t <= 0.0f || row[i] != 0.0f;  /* what is left non-zero was kept */
        token_kept[j] = (float)kept;
        total += kept;
    }
    return total;
}
