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
 *   threshold_apply: h_i = 0 where m_i < t (in place), per-token kept counts, per-neuron kept counts.
 */
/* Without this gcc keeps the bin loop scalar (its clamps could raise FP exceptions, which we never trap);
 * 13x slower. Clang assumes it by default. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Returns 0, or -1 if scratch could not be allocated. proxy_sum and dropped_count (points doubles each) are
 * accumulated into; *full_proxy_sum is added to; *max_magnitude is raised. y_norm[j] == 0 tokens add 0. */
int grid_stats(int n, int df, const float *h, const float *norms, const float *y_norm, double log_lo,
               double inv_step, int points, double *proxy_sum, double *dropped_count, double *full_proxy_sum,
               float *max_magnitude) {
    double *squares = malloc(sizeof(double) * (points + 1));
    int64_t *counts = calloc(points + 1, sizeof(int64_t));
    int *bins = malloc(sizeof(int) * df);
    float *m2 = malloc(sizeof(float) * df);
    if (!squares || !counts || !bins || !m2) {
        free(squares), free(counts), free(bins), free(m2);
        return -1;
    }
    float top = *max_magnitude, lo = (float)log_lo, inv = (float)inv_step;
    double full_total = 0.0;
    for (int j = 0; j < n; j++) {
        const float *row = h + (int64_t)j * df;
        memset(squares, 0, sizeof(double) * (points + 1));
        float row_top = top;
#pragma omp simd reduction(max : row_top)
        for (int i = 0; i < df; i++) {  /* vectorized: magnitudes and their bins */
            float m = fabsf(row[i]) * norms[i];
            bins[i] = grid_bin(m, lo, inv, points);
            m2[i] = m * m;
            row_top = m > row_top ? m : row_top;
        }
        top = row_top;
        double all = 0.0;
        for (int i = 0; i < df; i++) {  /* scalar: the scatter */
            squares[bins[i]] += m2[i];
            counts[bins[i]]++;
            all += m2[i];
        }
        float y = y_norm[j];
        if (!(y > 0.0f)) continue;
        double cumulative = 0.0, inv_y = 1.0 / y;
        for (int k = 0; k < points; k++) {
            cumulative += squares[k];
            proxy_sum[k] += sqrt(cumulative) * inv_y;
        }
        full_total += sqrt(all) * inv_y;
    }
    int64_t below = 0;
    for (int k = 0; k < points; k++) {
        below += counts[k];
        dropped_count[k] += (double)below;
    }
    *full_proxy_sum += full_total;
    *max_magnitude = top;
    free(squares), free(counts), free(bins), free(m2);
    return 0;
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
