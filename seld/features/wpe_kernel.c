/* The CPU products of WPE's normal equations (seld/features/wpe.py), compiled on first use for
 * the machine it runs on by seld/features/native.py (cc -O3 -march=native).
 *
 * Per (clip, bin) the products are out[r][c] = sum_s w[w_off[r] + s] * z[s][c]: the rows of a
 * Hankel matrix of the weights lam (row r starts at w_off[r]) times the real view ([re, im]) of
 * the lag products z[s][c'] = conj(y[s]) y[s - (L-1-c')] (T x 2L). Only a triangle of them is
 * read (R's Hermitian half and P): for column tile j the rows first_row[j] .. nrows-1. A BLAS
 * product computes the whole rectangle (2.07x the needed multiply-adds) from a Hankel matrix
 * copied out first and lag products stored for the whole clip (132 MB for 5 s, read from memory
 * in every iteration); here the weights are read where they are, the lag products of one column
 * tile are formed from the frames into a buffer that stays in the cache while its row groups read
 * it, and the work is 1.22x the needed multiply-adds.
 *
 * The register tile is TILE_ROWS rows x 2 vectors; each sum runs over s in order.
 *
 * wpe_cholesky_solve then solves the normal equations of several bins at once, one per SIMD lane.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#define VEC 8
#define TILE_ROWS 8 /* 16 accumulators + 2 operands of 32 registers */
#elif defined(__AVX__)
#define VEC 4
#define TILE_ROWS 6 /* 12 accumulators + 2 operands of 16 registers */
#else
#define VEC 2
#define TILE_ROWS 6
#endif
#define TILE_COLS (2 * VEC)

typedef double vec __attribute__((vector_size(VEC * sizeof(double))));
typedef int64_t veci __attribute__((vector_size(VEC * sizeof(int64_t))));

static inline vec load(const double *p)
{
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store(double *p, vec v) { memcpy(p, &v, sizeof v); }

int wpe_tile_cols(void) { return TILE_COLS; }
int wpe_tile_rows(void) { return TILE_ROWS; }

/* rows r0 .. r0+nr-1 (nr <= TILE_ROWS) of one column tile of lag products zt (T x TILE_COLS) */
static void tile(int nr, int t, const double *w, const int64_t *w_off, int r0, const double *zt, double *out,
                 int64_t ldo)
{
    const double *wp[TILE_ROWS];
    vec acc[TILE_ROWS][2];
    for (int r = 0; r < TILE_ROWS; r++) {
        wp[r] = w + w_off[r0 + (r < nr ? r : nr - 1)];
        acc[r][0] = acc[r][1] = (vec){0};
    }
    for (int s = 0; s < t; s++, zt += TILE_COLS) {
        vec z0 = load(zt), z1 = load(zt + VEC);
#pragma GCC unroll 16
        for (int r = 0; r < TILE_ROWS; r++) {
            double b = wp[r][s];
            acc[r][0] += b * z0;
            acc[r][1] += b * z1;
        }
    }
    for (int r = 0; r < nr; r++) {
        store(out + (int64_t)(r0 + r) * ldo, acc[r][0]);
        store(out + (int64_t)(r0 + r) * ldo + VEC, acc[r][1]);
    }
}

/* conj(a) * v for the VEC / 2 complex numbers of v ([re, im] pairs):
 * [ar vr + ai vi, ar vi - ai vr] = ar v + [ai, -ai, ...] * swap(v) */
static inline vec conj_times(double ar, double ai, vec v)
{
#if VEC == 8
    const veci swap = {1, 0, 3, 2, 5, 4, 7, 6};
    const vec sign = {1, -1, 1, -1, 1, -1, 1, -1};
#elif VEC == 4
    const veci swap = {1, 0, 3, 2};
    const vec sign = {1, -1, 1, -1};
#else
    const veci swap = {1, 0};
    const vec sign = {1, -1};
#endif
    return ar * v + (ai * sign) * __builtin_shuffle(v, swap);
}

/* Lag products of column tile j into zt (T x TILE_COLS): complex column c = j TILE_COLS / 2 + q
 * of row s is conj(y[s]) y[s - (L-1-c)] = conj(yp[s + L-1]) yp[s + c], yp = y after L-1 zeros */
static void lag_tile(int t, int lags, const double *yp, int j, double *zt)
{
    const double *src = yp + (int64_t)j * TILE_COLS;
    for (int s = 0; s < t; s++, zt += TILE_COLS, src += 2) {
        double ar = yp[2 * (s + lags - 1)], ai = yp[2 * (s + lags - 1) + 1];
        store(zt, conj_times(ar, ai, load(src)));
        store(zt + VEC, conj_times(ar, ai, load(src + VEC)));
    }
}

/* For bins i < nbins: out_i[r][c] (row-major, nrows x ncols) for column tiles j and rows
 * first_row[j] <= r < nrows, from the weights w_i (w_off[r] + T - 1 < row length) and the lag
 * products of y_i: complex, [re, im] interleaved, ncols / 2 - 1 zeros then the T frames. Each
 * tile's lag products are formed once into a buffer that stays in the L1 / L2 cache while its
 * row groups read it (instead of streaming 132 MB of stored lag products per clip from memory).
 * Rows below first_row[j] of the lowest row group may be written too (they belong to the same
 * block); nothing outside the bins' blocks is. ncols % TILE_COLS == 0. Returns 0, or -1 when
 * the buffer cannot be allocated. */
int wpe_products(int nbins, int nrows, int ncols, int t, const double *w, int64_t w_stride, const int64_t *w_off,
                 const double *y, int64_t y_stride, double *out, int64_t out_stride, const int *first_row)
{
    double *zt = malloc((size_t)t * TILE_COLS * sizeof(double));
    if (zt == NULL)
        return -1;
    for (int i = 0; i < nbins; i++) {
        const double *wi = w + i * w_stride;
        double *oi = out + i * out_stride;
        for (int j = 0; j < ncols / TILE_COLS; j++) {
            if (first_row[j] >= nrows)
                continue;
            lag_tile(t, ncols / 2, y + i * y_stride, j, zt);
            for (int r1 = nrows; r1 > first_row[j]; r1 -= TILE_ROWS) {
                int r0 = r1 - TILE_ROWS > 0 ? r1 - TILE_ROWS : 0;
                tile(r1 - r0, t, wi, w_off, r0, zt, oi + j * TILE_COLS, ncols);
            }
        }
    }
    free(zt);
    return 0;
}

/* Cholesky solves of many small Hermitian positive definite systems, one bin per SIMD lane.
 *
 * For bins i < nbins: A_i (n x n) is given by its upper triangle in column-major layout with
 * leading dimension lda (element (j, k), j <= k, at a + i a_step + 2 (j + k lda) as [re, im]; the
 * lower triangle is not read, A_i is not written); b_i (n complex at b + i b_step) is replaced by
 * A_i^-1 b_i. A_i = U^H U (U upper, zpotrf's factor, diagonal from the real part), then
 * U^H y = b and U x = y. info[i] = 0, or j + 1 when the j-th pivot is not positive (then b_i is
 * left as it was): as LAPACK's zposv, whose small-matrix code takes ~30 us for n = 60, most of it
 * per-call and per-column overhead; here LANES bins run in lock step with no reductions across
 * lanes. The factor is kept packed and lane-interleaved in a buffer of n (n+1) / 2 x LANES complex
 * numbers. Returns 0, or -1 when that buffer cannot be allocated. */
#define LANES VEC

static inline vec gather(const double *p, int64_t step)
{
    vec v;
    for (int l = 0; l < LANES; l++)
        v[l] = p[l * step];
    return v;
}

int wpe_cholesky_solve(int nbins, int n, int lda, const double *a, int64_t a_step, double *b, int64_t b_step, int *info)
{
    size_t packed = (size_t)n * (n + 1) / 2;
    /* vectors must be aligned to their size (sizeof(vec) is a power of two: aligned_alloc's rule holds) */
    vec *ure = aligned_alloc(sizeof(vec), packed * sizeof(vec)), *uim = aligned_alloc(sizeof(vec), packed * sizeof(vec));
    vec *inv = aligned_alloc(sizeof(vec), (size_t)n * sizeof(vec)), *yre = aligned_alloc(sizeof(vec), (size_t)n * sizeof(vec)),
        *yim = aligned_alloc(sizeof(vec), (size_t)n * sizeof(vec));
    if (!ure || !uim || !inv || !yre || !yim) {
        free(ure), free(uim), free(inv), free(yre), free(yim);
        return -1;
    }
    for (int i0 = 0; i0 < nbins; i0 += LANES) {
        int lanes = nbins - i0 < LANES ? nbins - i0 : LANES;
        /* lanes past the last bin repeat it (computed, never written) */
        const double *ai = a + (int64_t)i0 * a_step;
        int64_t astep = lanes > 1 ? a_step : 0;
        int bad[LANES] = {0};
        for (int k = 0; k < n; k++) {     /* column k of U */
            vec *uk_re = ure + (size_t)k * (k + 1) / 2, *uk_im = uim + (size_t)k * (k + 1) / 2;
            for (int j = 0; j <= k; j++) { /* U[j][k] = (A[j][k] - sum_m conj(U[m][j]) U[m][k]) / U[j][j] */
                const vec *uj_re = ure + (size_t)j * (j + 1) / 2, *uj_im = uim + (size_t)j * (j + 1) / 2;
                const double *ajk = ai + 2 * ((int64_t)j + (int64_t)k * lda);
                vec sre = gather(ajk, astep), sim = gather(ajk + 1, astep);
                for (int l = lanes; l < LANES; l++)
                    sre[l] = sre[lanes - 1], sim[l] = sim[lanes - 1];
                for (int m = 0; m < j; m++) {
                    sre -= uj_re[m] * uk_re[m] + uj_im[m] * uk_im[m];
                    sim -= uj_re[m] * uk_im[m] - uj_im[m] * uk_re[m];
                }
                if (j < k) {
                    uk_re[j] = sre * inv[j];
                    uk_im[j] = sim * inv[j];
                } else {
                    vec d = {0};
                    for (int l = 0; l < LANES; l++) {
                        if (!(sre[l] > 0.0)) { /* not positive (or NaN): this lane fails here */
                            if (!bad[l])
                                bad[l] = k + 1;
                            sre[l] = 1.0;
                        }
                        d[l] = sqrt(sre[l]);
                    }
                    uk_re[k] = d;
                    uk_im[k] = (vec){0};
                    inv[k] = 1.0 / d;
                }
            }
        }
        /* U^H y = b: y[k] = (b[k] - sum_{m<k} conj(U[m][k]) y[m]) / U[k][k] */
        double *bi = b + (int64_t)i0 * b_step;
        int64_t bstep = lanes > 1 ? b_step : 0;
        for (int k = 0; k < n; k++) {
            const vec *uk_re = ure + (size_t)k * (k + 1) / 2, *uk_im = uim + (size_t)k * (k + 1) / 2;
            vec sre = gather(bi + 2 * k, bstep), sim = gather(bi + 2 * k + 1, bstep);
            for (int m = 0; m < k; m++) {
                sre -= uk_re[m] * yre[m] + uk_im[m] * yim[m];
                sim -= uk_re[m] * yim[m] - uk_im[m] * yre[m];
            }
            yre[k] = sre * inv[k];
            yim[k] = sim * inv[k];
        }
        /* U x = y: x[k] = (y[k] - sum_{m>k} U[k][m] x[m]) / U[k][k], x in place of y */
        for (int k = n - 1; k >= 0; k--) {
            vec sre = yre[k], sim = yim[k];
            for (int m = k + 1; m < n; m++) {
                vec ur = ure[(size_t)m * (m + 1) / 2 + k], ui = uim[(size_t)m * (m + 1) / 2 + k];
                sre -= ur * yre[m] - ui * yim[m];
                sim -= ur * yim[m] + ui * yre[m];
            }
            yre[k] = sre * inv[k];
            yim[k] = sim * inv[k];
        }
        for (int l = 0; l < lanes; l++) {
            info[i0 + l] = bad[l];
            if (bad[l])
                continue;
            double *bl = bi + (int64_t)l * b_step;
            for (int k = 0; k < n; k++) {
                bl[2 * k] = yre[k][l];
                bl[2 * k + 1] = yim[k][l];
            }
        }
    }
    free(ure), free(uim), free(inv), free(yre), free(yim);
    return 0;
}
