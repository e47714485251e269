"""C source of the fused recurrent kernel (compiled at first use by :mod:`neurosheet.rate.fused`).

Kept as a Python string so the wheel ships it without package-data rules. Layout: every state
is ``[rows, B]`` row-major (a neuron's batch is contiguous, so one synapse moves one contiguous
batch vector). The recurrent matrix is CSR (int32 indices); a batch of networks is a
block-diagonal CSR with one *block* of rows per network, each with its own sub-step count
``k``, number of sub-steps ``S`` and ``a = dt / (k tau)``. Blocks never interact.

Forward, per block and sub-step ``s`` (task step ``t = s / k``)::

    x <- x + a (W r + drive[t] + noise[s] - x);   r <- f(x);   R[s + 1] = r

Backward (BPTT by hand; ``gx`` is dL/dx of the later sub-step)::

    gdrive[t] += a gx;   gw_e += a gx[post_e] . R[s][pre_e];   gr = a W^T gx (+ gout at task ends)
    gx <- (1 - a) gx + f'(R[s]) gr

``f'`` is written in terms of ``r = f(x)`` so only rates are stored. Both passes *gather*: the
forward walks the CSR rows (post), the backward the rows of the transpose (pre), so each row's
batch chunk stays in vector registers (GCC vector extensions at the native width: 16 floats
with AVX-512, 8 with AVX2) and
memory is written once per row, not once per synapse; the per-synapse dot products of ``gw``
accumulate as 16-wide partial sums and are reduced once per call. Threads split the batch
columns (one part each, no barriers: columns never interact), each part with its own partial
sums, added in part order at the end.
"""

SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define ACT_RELU 0
#define ACT_TANH 1
#define ACT_SOFTPLUS 2
#define ACT_RETANH 3

typedef int64_t i64;
typedef int32_t i32;
/* The native vector width: a 64-byte vector type on AVX2 is kept on the stack by GCC (measured:
   spills in the inner loops, ~2x slower), so there a 16-column group is two 8-wide vectors */
#ifdef __AVX512F__
#define VW 16
#else
#define VW 8
#endif
#define NS (16 / VW)  /* vectors per 16-column group */
typedef float vf __attribute__((vector_size(4 * VW)));
typedef float vfu __attribute__((vector_size(4 * VW), aligned(4)));  /* unaligned loads/stores */
#define LD(p) (*(const vfu *)(p))
#define ST(p, v) (*(vfu *)(p) = (v))

/* r = f(x) over n floats; NaN stays NaN, as in torch (a diverging run must not look sane) */
static void act_rows(float *restrict r, const float *restrict x, i64 n, int act) {
    i64 b;
    switch (act) {
    case ACT_RELU:
        #pragma omp simd
        for (b = 0; b < n; ++b) r[b] = x[b] < 0.0f ? 0.0f : x[b];
        break;
    case ACT_TANH:
        for (b = 0; b < n; ++b) r[b] = tanhf(x[b]);
        break;
    case ACT_SOFTPLUS: /* torch's softplus: x above 20 is returned as is */
        for (b = 0; b < n; ++b) r[b] = x[b] > 20.0f ? x[b] : log1pf(expf(x[b]));
        break;
    default:
        for (b = 0; b < n; ++b) r[b] = x[b] < 0.0f ? 0.0f : tanhf(x[b]);
    }
}

/* g = c gold + f'(x) g, f' written in r = f(x) */
static void dact_rows(float *restrict g, const float *restrict gold, const float *restrict r,
                      float c, i64 n, int act) {
    i64 b;
    switch (act) {
    case ACT_RELU:
        #pragma omp simd
        for (b = 0; b < n; ++b) g[b] = c * gold[b] + (r[b] <= 0.0f ? 0.0f : g[b]);
        break;
    case ACT_TANH:
        #pragma omp simd
        for (b = 0; b < n; ++b) g[b] = c * gold[b] + (1.0f - r[b] * r[b]) * g[b];
        break;
    case ACT_SOFTPLUS:
        for (b = 0; b < n; ++b) g[b] = c * gold[b] + (1.0f - expf(-r[b])) * g[b];
        break;
    default:
        #pragma omp simd
        for (b = 0; b < n; ++b)
            g[b] = c * gold[b] + (r[b] <= 0.0f ? 0.0f : (1.0f - r[b] * r[b]) * g[b]);
    }
}

/* Forward of one row over the batch columns [b0, b0 + 16 NV): x += a (W r + d + n - x) */
#define FWD_CHUNK(NV)                                                                        \
static inline void fwd_chunk_##NV(i64 B, i64 b0, float a, const i32 *restrict ip,           \
                                  const i32 *restrict ix, const float *restrict w, i64 i,   \
                                  const float *restrict rs, const float *restrict di,       \
                                  const float *restrict ni, float *restrict xi) {           \
    vf acc[NV * NS];                                                                         \
    for (int v = 0; v < NV * NS; ++v) acc[v] = LD(di + b0 + VW * v);                         \
    if (ni)                                                                                  \
        for (int v = 0; v < NV * NS; ++v) acc[v] += LD(ni + b0 + VW * v);                    \
    for (i32 e = ip[i]; e < ip[i + 1]; ++e) {                                                \
        const float *restrict rj = rs + (i64)ix[e] * B + b0;                                 \
        const float we = w[e];                                                               \
        for (int v = 0; v < NV * NS; ++v) acc[v] += we * LD(rj + VW * v);                    \
    }                                                                                        \
    for (int v = 0; v < NV * NS; ++v) {  /* a = 1: x = total exactly, as the eager loop */ \
        vf x = LD(xi + b0 + VW * v);                                                         \
        ST(xi + b0 + VW * v, a == 1.0f ? acc[v] : x + a * (acc[v] - x));                     \
    }                                                                                        \
}
FWD_CHUNK(4)
FWD_CHUNK(2)
FWD_CHUNK(1)

/* Backward of one pre row j over [b0, b0 + 16 NV): gr[j] = go[j] + sum_e wt_e gx[post_e] and
   gwv[e] += gx[post_e] * r[j] (16-wide partial dot products: lane l of edge e sums the columns
   l, l + 16, ... of the chunk, in that order) */
#define BWD_CHUNK(NV)                                                                        \
static inline void bwd_chunk_##NV(i64 B, i64 b0, const i32 *restrict tp,                    \
                                  const i32 *restrict tx, const float *restrict wt, i64 j,  \
                                  const float *restrict gx, const float *restrict rj,       \
                                  const float *restrict go, float *restrict grj,            \
                                  float *restrict gwv) {                                    \
    vf acc[NV * NS], r[NV * NS];                                                             \
    for (int v = 0; v < NV * NS; ++v) {                                                      \
        acc[v] = go ? LD(go + b0 + VW * v) : (vf){0};                                        \
        r[v] = LD(rj + b0 + VW * v);                                                         \
    }                                                                                        \
    for (i32 e = tp[j]; e < tp[j + 1]; ++e) {                                                \
        const float *restrict gi = gx + (i64)tx[e] * B + b0;                                 \
        const float we = wt[e];                                                              \
        vf d[NS];                                                                            \
        for (int u = 0; u < NS; ++u) {                                                       \
            const vf g = LD(gi + VW * u);                                                    \
            d[u] = g * r[u];                                                                 \
            acc[u] += we * g;                                                                \
        }                                                                                    \
        for (int v = NS; v < NV * NS; ++v) {                                                 \
            const vf g = LD(gi + VW * v);                                                    \
            acc[v] += we * g;                                                                \
            d[v % NS] += g * r[v];                                                           \
        }                                                                                    \
        for (int u = 0; u < NS; ++u) ST(gwv + 16 * (i64)e + VW * u, LD(gwv + 16 * (i64)e + VW * u) + d[u]); \
    }                                                                                        \
    for (int v = 0; v < NV * NS; ++v) ST(grj + b0 + VW * v, acc[v]);                         \
}
BWD_CHUNK(4)
BWD_CHUNK(2)
BWD_CHUNK(1)

/* The batch columns [c0, c1) of part t of nt: whole 16-column groups split evenly, the last
   part also takes the tail past the last whole group. Columns never interact in either pass
   (only the weight gradient sums over them), so parts need no barriers: each runs every
   sub-step of its columns, on whichever thread of the team takes it. */
static void column_range(i64 B, int t, int nt, i64 *c0, i64 *c1) {
    const i64 units = B / 16;
    *c0 = units * t / nt * 16;
    *c1 = t == nt - 1 ? B : units * (t + 1) / nt * 16;
}

/* Parts of at least one whole 16-column group each (1 below 32 columns) */
static int part_count(i64 B, int nparts) {
    const i64 units = B / 16;
    if (nparts < 1) nparts = 1;
    return units < nparts ? (units > 1 ? (int)units : 1) : nparts;
}

/* The forward pass of ns_forward on the batch columns [c0, c1) */
static void fwd_columns(i64 B, i64 c0, i64 c1, i64 nblk, const i64 *row0, const i64 *row1,
                        const i64 *ks, const i64 *Ss, const float *as, int act, i64 rows,
                        const i32 *indptr, const i32 *indices, const float *w,
                        const float *drive, const float *noise, float *x, float *R, int keep,
                        float *out) {
    const i64 plane = rows * B, nc = c1 - c0;
    for (i64 q = 0; q < nblk; ++q) {
        const i64 k = ks[q], S = Ss[q];
        const float a = as[q];
        for (i64 i = row0[q]; i < row1[q]; ++i) act_rows(R + i * B + c0, x + i * B + c0, nc, act);
        for (i64 s = 0; s < S; ++s) {
            const float *rs = R + (keep ? s : (s & 1)) * plane;
            float *rn = R + (keep ? s + 1 : ((s + 1) & 1)) * plane;
            const float *dt = drive + (s / k) * plane;
            const float *ns = noise ? noise + s * plane : 0;
            for (i64 i = row0[q]; i < row1[q]; ++i) {
                const float *di = dt + i * B, *ni = ns ? ns + i * B : 0;
                float *xi = x + i * B;
                i64 b0 = c0;
                for (; b0 + 64 <= c1; b0 += 64) fwd_chunk_4(B, b0, a, indptr, indices, w, i, rs, di, ni, xi);
                for (; b0 + 32 <= c1; b0 += 32) fwd_chunk_2(B, b0, a, indptr, indices, w, i, rs, di, ni, xi);
                for (; b0 + 16 <= c1; b0 += 16) fwd_chunk_1(B, b0, a, indptr, indices, w, i, rs, di, ni, xi);
                for (; b0 < c1; ++b0) {
                    float tot = di[b0] + (ni ? ni[b0] : 0.0f);
                    for (i32 e = indptr[i]; e < indptr[i + 1]; ++e)
                        tot += w[e] * rs[(i64)indices[e] * B + b0];
                    xi[b0] = a == 1.0f ? tot : xi[b0] + a * (tot - xi[b0]);
                }
                act_rows(rn + i * B + c0, xi + c0, nc, act);
            }
            if ((s + 1) % k == 0) {
                float *o = out + ((s + 1) / k - 1) * plane;
                for (i64 i = row0[q]; i < row1[q]; ++i)
                    memcpy(o + i * B + c0, rn + i * B + c0, sizeof(float) * nc);
            }
        }
    }
}

/* Forward of every block. R holds S_max + 1 rate slots of [rows, B] when keep != 0, else 2
   (ping-pong); out[t] = rates at the end of task step t ([T_max, rows, B]); x: [rows, B] holds
   x0 on entry and the final state on exit. noise may be NULL. The batch columns are split into
   nparts parts run by a team of `team` threads (rates and states are the same for every split
   and team: each column is computed alike). */
void ns_forward(i64 B, i64 nblk, const i64 *row0, const i64 *row1, const i64 *ks,
                const i64 *Ss, const float *as, int act, i64 rows,
                const i32 *indptr, const i32 *indices, const float *w,
                const float *drive, const float *noise, float *x,
                float *R, int keep, float *out, int nparts, int team) {
    const int np = part_count(B, nparts);
    #pragma omp parallel for num_threads(team) if (team > 1 && np > 1) schedule(dynamic, 1)
    for (int t = 0; t < np; ++t) {
        i64 c0, c1;
        column_range(B, t, np, &c0, &c1);
        fwd_columns(B, c0, c1, nblk, row0, row1, ks, Ss, as, act, rows, indptr, indices, w,
                    drive, noise, x, R, keep, out);
    }
}

/* The backward pass of ns_backward on the batch columns [c0, c1), with this thread's own
   16-wide partial sums gwv ([nnz] x 16) */
static void bwd_columns(i64 B, i64 c0, i64 c1, i64 nblk, const i64 *row0, const i64 *row1,
                        const i64 *ks, const i64 *Ss, const float *as, int act, i64 rows,
                        const i32 *tindptr, const i32 *tindices, const float *wt,
                        const float *R, const float *gout, float *gdrive, float *gx0,
                        float *ga, float *gb, float *gwv) {
    const i64 plane = rows * B, nc = c1 - c0;
    for (i64 q = 0; q < nblk; ++q) {
        const i64 k = ks[q], S = Ss[q], T = S / k;
        const float a = as[q];
        float *gx = ga, *gn = gb;
        for (i64 i = row0[q]; i < row1[q]; ++i) {
            const i64 o = i * B + c0;
            memset(gx + o, 0, sizeof(float) * nc);
            memcpy(gn + o, gout + (T - 1) * plane + o, sizeof(float) * nc);
            dact_rows(gn + o, gx + o, R + S * plane + o, 0.0f, nc, act);
        }
        gx = gb; gn = ga;
        for (i64 s = S - 1; s >= 0; --s) {
            const float *rs = R + s * plane;
            const float *go = (s % k == 0 && s > 0) ? gout + (s / k - 1) * plane : 0;
            for (i64 i = row0[q]; i < row1[q]; ++i) {
                float *restrict gd = gdrive + (s / k) * plane + i * B + c0;
                const float *restrict gq = gx + i * B + c0;
                #pragma omp simd
                for (i64 b = 0; b < nc; ++b) gd[b] += a * gq[b];
            }
            for (i64 j = row0[q]; j < row1[q]; ++j) {
                const float *rj = rs + j * B, *goj = go ? go + j * B : 0;
                float *grj = gn + j * B;
                i64 b0 = c0;
                for (; b0 + 64 <= c1; b0 += 64)
                    bwd_chunk_4(B, b0, tindptr, tindices, wt, j, gx, rj, goj, grj, gwv);
                for (; b0 + 32 <= c1; b0 += 32)
                    bwd_chunk_2(B, b0, tindptr, tindices, wt, j, gx, rj, goj, grj, gwv);
                for (; b0 + 16 <= c1; b0 += 16)
                    bwd_chunk_1(B, b0, tindptr, tindices, wt, j, gx, rj, goj, grj, gwv);
                for (; b0 < c1; ++b0) {
                    float acc = goj ? goj[b0] : 0.0f;
                    for (i32 e = tindptr[j]; e < tindptr[j + 1]; ++e) {
                        const float g = gx[(i64)tindices[e] * B + b0];
                        acc += wt[e] * g;
                        gwv[16 * (i64)e] += g * rj[b0];
                    }
                    grj[b0] = acc;
                }
                dact_rows(grj + c0, gx + j * B + c0, rj + c0, 1.0f - a, nc, act);
            }
            float *t = gx; gx = gn; gn = t;
        }
        for (i64 i = row0[q]; i < row1[q]; ++i)
            memcpy(gx0 + i * B + c0, gx + i * B + c0, sizeof(float) * nc);
    }
}

/* Backward of every block (see the module docstring) on the transposed CSR (tindptr,
   tindices; wt = a * w in transposed order; tperm: transposed edge -> edge). R: the S_max + 1
   slots of the forward; gout: dL/d out ([T_max, rows, B]). Outputs: gdrive ([T_max, rows, B],
   zeroed by the caller), gw ([nnz]), gx0 ([rows, B]). Scratch: ga, gb ([rows, B]),
   gwv ([nparts, nnz, 16], zeroed by the caller): each part's partial sums of gw over its
   columns, added in part order at the end (the only place the split shows: the same nparts
   gives the same numbers bit for bit whatever the team). */
void ns_backward(i64 B, i64 nblk, const i64 *row0, const i64 *row1, const i64 *ks,
                 const i64 *Ss, const float *as, int act, i64 rows,
                 const i32 *tindptr, const i32 *tindices, const i32 *tperm, const float *wt,
                 const float *R, const float *gout, float *gdrive, float *gw, float *gx0,
                 float *ga, float *gb, float *gwvf, int nparts, int team) {
    const int np = part_count(B, nparts);
    const i64 nnz = tindptr[rows];
    #pragma omp parallel for num_threads(team) if (team > 1 && np > 1) schedule(dynamic, 1)
    for (int t = 0; t < np; ++t) {
        i64 c0, c1;
        column_range(B, t, np, &c0, &c1);
        bwd_columns(B, c0, c1, nblk, row0, row1, ks, Ss, as, act, rows, tindptr, tindices, wt,
                    R, gout, gdrive, gx0, ga, gb, gwvf + 16 * t * nnz);
    }
    for (i64 q = 0; q < nblk; ++q)
        for (i32 e = tindptr[row0[q]]; e < tindptr[row1[q]]; ++e) {
            float sum = 0.0f;
            for (int t = 0; t < np; ++t)
                for (int v = 0; v < 16; ++v) sum += gwvf[16 * (t * nnz + e) + v];
            gw[tperm[e]] = as[q] * sum;
        }
}

/* ---------------------------------------------------------------- normal noise
   out[n] = scale * z_n, z_n standard normal from a counter-based generator: hash h_p is the
   splitmix64 output of (seed, p). Chunk c = n / 32 of the output takes the 16 hashes
   16c..16c+15: the 32-bit words of hashes 16c..16c+7 give 16 radii, those of 16c+8..16c+15
   16 angles (Box-Muller); its first 16 elements are the cosine branch, the last 16 the sine.
   The stream depends only on (seed, n), not on the vector width; log and sin/cos are
   polynomial (Cephes single precision, ~1e-7 relative). */
typedef uint64_t u64;
/* 8-wide types here (AVX2-native): 64-byte ones spill on AVX2 (measured 5.0 ns a number
   against 1.8); the lanes compute the same numbers either way */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint32_t v8w __attribute__((vector_size(32)));
typedef uint64_t v4q __attribute__((vector_size(32)));

static inline v4q mix64(v4q z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline v8 vlog(v8 x) {  /* x in (0, 1] */
    v8i bits = (v8i)x;
    v8i e = ((bits >> 23) & 0xff) - 126;
    v8 m = (v8)((bits & 0x007fffff) | 0x3f000000);          /* m in [0.5, 1) */
    v8i small = m < 0.70710678f;                               /* -1 where m < sqrt(1/2) */
    e = e + small;                                              /* e - 1 there */
    v8 f = m - 1.0f + (v8)((v8i)m & small);                  /* 2m - 1 there, else m - 1 */
    v8 z = f * f;
    v8 y = (v8){0} + 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f; y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f; y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f; y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f; y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    v8 ef = __builtin_convertvector(e, v8);
    y += -2.12194440e-4f * ef;
    y += -0.5f * z;
    return f + y + 0.693359375f * ef;
}

/* sin and cos of 2 pi u for u in [0, 1) */
static inline void vsincos2pi(v8 u, v8 *s, v8 *c) {
    v8 q4 = u * 4.0f + 0.5f;
    v8i q = __builtin_convertvector(q4, v8i);                 /* trunc of a positive = floor */
    v8 t = (u - __builtin_convertvector(q, v8) * 0.25f) * 6.28318530717958647692f;
    v8 z = t * t;                                              /* t in [-pi/4, pi/4] */
    v8 sn = (v8){0} - 1.9515295891e-4f;
    sn = sn * z + 8.3321608736e-3f; sn = sn * z - 1.6666654611e-1f; sn = sn * z * t + t;
    v8 cs = (v8){0} + 2.443315711809948e-5f;
    cs = cs * z - 1.388731625493765e-3f; cs = cs * z + 4.166664568298827e-2f;
    cs = cs * z * z - 0.5f * z + 1.0f;
    v8i swap = ((q & 1) != 0);                                 /* odd quadrants: swap */
    v8 ss = (v8)(((v8i)sn & ~swap) | ((v8i)cs & swap));
    v8 cc = (v8)(((v8i)cs & ~swap) | ((v8i)sn & swap));
    v8i sflip = ((q & 2) != 0);                                /* quadrants 2, 3: sin < 0 */
    v8i cflip = (((q + 1) & 2) != 0);                          /* quadrants 1, 2: cos < 0 */
    const v8i sign = (v8i){0} + INT32_MIN;
    *s = (v8)((v8i)ss ^ (sflip & sign));
    *c = (v8)((v8i)cc ^ (cflip & sign));
}

static inline u64 mix64s(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline void normal_chunk(u64 key, u64 chunk, float scale, float *dst) {
    const v4q iota = {0, 1, 2, 3};
    for (int h = 0; h < 2; ++h) {  /* lanes 8h..8h+7: words of hashes 4h..4h+3 and 8+4h.. */
        const v4q p0 = iota + (chunk * 16 + 4 * (u64)h), p1 = p0 + 8;
        const v8w w0 = (v8w)mix64(p0 * 0x9E3779B97F4A7C15ULL + key);
        const v8w w1 = (v8w)mix64(p1 * 0x9E3779B97F4A7C15ULL + key);
        v8 u1 = __builtin_convertvector((v8i)((w0 >> 8) + 1), v8) * 5.9604644775390625e-8f;
        v8 u2 = __builtin_convertvector((v8i)(w1 >> 8), v8) * 5.9604644775390625e-8f;
        v8 rad = -2.0f * vlog(u1);
        for (int l = 0; l < 8; ++l) rad[l] = sqrtf(rad[l]);
        const v8 r = rad * scale;
        v8 sn, cs;
        vsincos2pi(u2, &sn, &cs);
        *(v8u *)(dst + 8 * h) = r * cs;
        *(v8u *)(dst + 16 + 8 * h) = r * sn;
    }
}

void ns_normal(float *out, i64 n, u64 seed, float scale, int team) {
    const u64 key = mix64s(seed);
    const i64 full = n / 32;
    const int nt = team > 1 && full >= 4096 ? team : 1;  /* small draws: no team */
    #pragma omp parallel for num_threads(nt) if (nt > 1) schedule(static)
    for (i64 c = 0; c < full; ++c) normal_chunk(key, (u64)c, scale, out + c * 32);
    if (full * 32 < n) {
        float tail[32];
        normal_chunk(key, (u64)full, scale, tail);
        memcpy(out + full * 32, tail, sizeof(float) * (n - full * 32));
    }
}
"""
