"""C source of the fused spiking kernel (compiled at first use by :mod:`neurosheet.spiking.fused`).

Kept as a Python string so the wheel ships it without package-data rules. Every state is
``[N, B]`` row-major (a neuron's batch is contiguous); the recurrent edges come pre-major
(CSC: ``tp``/``tx`` int32, ``wt`` the gain-scaled values in that order). The map is
:meth:`SpikingSheet.forward <neurosheet.spiking.network.SpikingSheet.forward>`'s, per sub-step
``s`` (task step ``t = s / K``, ``j = s % K``)::

    syn <- alpha syn + (W spk + drive[t]);  m = beta mem + (syn + noise[s])
    x = m - th  (th = theta; subtract: 2 theta where mem > theta);  spk = [x > 0]
    mem = m (1 - spk)  (subtract: m - theta spk);  cnt[t] += spk;  wsum[t] += rw[j] spk

``W spk`` is event-driven: the forward pass lists the (neuron, trial) pairs that spiked and the
next sub-step adds each one's outgoing edges. ``X[s] = x`` is all the backward pass needs (the
spike is ``x > 0``). Backward (BPTT by hand, the reset's spike detached; ``gm``/``gsyn`` are the
adjoints of ``m``/``syn`` of the later sub-step, ``grec = W^T gsyn`` of the later sub-step)::

    gs = grec + gcnt[t] + rw[j] gwsum[t];   gx = gs gscale / (slope |x| + 1)^2
    gm <- gx + beta (1 - spk) gm  (subtract: gx + beta gm);   gsyn <- gm + alpha gsyn
    gdrive[t] += gsyn;   grec = W^T gsyn;   gw_e += sum over trials where pre_e spiked at s - 1
                                              of gsyn[post_e]

``1 / (slope |x| + 1)^2`` is snntorch's ``fast_sigmoid`` derivative. Compiled without FMA
contraction so each product and sum rounds as in torch's separate operations.
"""

SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <math.h>

typedef int64_t i64;
typedef int32_t i32;
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));  /* unaligned loads/stores */
#define LD(p) (*(const v8u *)(p))
#define ST(p, v) (*(v8u *)(p) = (v))

/* rec[post_e] += wt_e spk[p] over p's outgoing edges, for every neuron p that spiked in some
   trial: a few trials one by one (scalar), many as one batch vector (a trial that did not spike
   adds w * 0, which leaves the sum as it is, so both ways give the same bits). */
static void propagate(i64 N, i64 B, const i32 *restrict tp, const i32 *restrict tx,
                      const float *restrict wt, const float *restrict spk,
                      const float *restrict nspk, float *restrict rec) {
    memset(rec, 0, sizeof(float) * N * B);
    for (i64 p = 0; p < N; ++p) {
        const float c = nspk[p];
        if (c == 0.0f) continue;
        const float *restrict sp = spk + p * B;
        if (c * 32.0f <= (float)B) {
            for (i64 b = 0; b < B; ++b) {
                if (sp[b] == 0.0f) continue;
                float *restrict rb = rec + b;
                for (i32 e = tp[p]; e < tp[p + 1]; ++e) rb[(i64)tx[e] * B] += wt[e];
            }
        } else {
            for (i32 e = tp[p]; e < tp[p + 1]; ++e) {
                float *restrict ri = rec + (i64)tx[e] * B;
                const float we = wt[e];
                #pragma omp simd
                for (i64 b = 0; b < B; ++b) ri[b] += we * sp[b];
            }
        }
    }
}

/* Forward. drive: [T, N, B]; noise: [T K, N, B] or NULL (already scaled); rw: [K]. Scratch:
   syn, mem, rec, spk ([N, B]), nspk ([N]). X: [T K, N, B] or NULL (not kept). Outputs: cnt,
   wsum ([T, N, B], zeroed by the caller). */
void nss_forward(i64 N, i64 B, i64 T, i64 K, int subtract, float alpha, float beta,
                 float theta, const i32 *restrict tp, const i32 *restrict tx,
                 const float *restrict wt, const float *restrict drive,
                 const float *restrict noise, const float *restrict rw,
                 float *restrict syn, float *restrict mem, float *restrict rec,
                 float *restrict spk, float *restrict nspk, float *restrict X,
                 float *restrict cnt, float *restrict wsum) {
    const i64 plane = N * B;
    const float theta2 = 2.0f * theta;
    memset(syn, 0, sizeof(float) * plane);
    memset(mem, 0, sizeof(float) * plane);
    memset(nspk, 0, sizeof(float) * N);
    for (i64 t = 0; t < T; ++t) {
        const float *restrict d = drive + t * plane;
        float *restrict c = cnt + t * plane, *restrict w = wsum + t * plane;
        for (i64 j = 0; j < K; ++j) {
            const i64 s = t * K + j;
            propagate(N, B, tp, tx, wt, spk, nspk, rec);  /* the previous sub-step's spikes */
            const float *restrict ns = noise ? noise + s * plane : 0;
            float *restrict xs = X ? X + s * plane : 0;
            const float r = rw[j];
            for (i64 i = 0; i < N; ++i) {
                float tot = 0.0f;
                #pragma omp simd reduction(+:tot)
                for (i64 b = 0; b < B; ++b) {
                    const i64 q = i * B + b;
                    const float sy = alpha * syn[q] + (rec[q] + d[q]);
                    syn[q] = sy;
                    const float m = beta * mem[q] + (ns ? sy + ns[q] : sy);
                    const float x = m - (subtract && mem[q] > theta ? theta2 : theta);
                    if (xs) xs[q] = x;
                    const float f = x > 0.0f ? 1.0f : 0.0f;
                    mem[q] = f != 0.0f ? (subtract ? m - theta : 0.0f) : m;
                    c[q] += f;
                    w[q] += r * f;
                    spk[q] = f;
                    tot += f;
                }
                nspk[i] = tot;
            }
        }
    }
}

/* Backward. X: the forward's [T K, N, B]; gcnt, gwsum: [T, N, B] or NULL. Outputs: gdrive
   ([T, N, B]) and gw ([nnz], pre-major order), both zeroed by the caller. Scratch: gm, gsyn,
   grec ([N, B]), sp ([B]), gwv ([nnz, 8]: per-edge partial sums of the 8 lanes of a chunk,
   zeroed by the caller). */
void nss_backward(i64 N, i64 B, i64 T, i64 K, int subtract, float alpha, float beta,
                  float gscale, float slope, const i32 *restrict tp, const i32 *restrict tx,
                  const float *restrict wt, const float *restrict X,
                  const float *restrict rw, const float *restrict gcnt,
                  const float *restrict gwsum, float *restrict gdrive, float *restrict gw,
                  float *restrict gm, float *restrict gsyn, float *restrict grec,
                  float *restrict sp, float *restrict gwvf) {
    const i64 plane = N * B, b32 = B / 32 * 32;
    v8u *restrict gwv = (v8u *)gwvf;
    memset(gm, 0, sizeof(float) * plane);
    memset(gsyn, 0, sizeof(float) * plane);
    memset(grec, 0, sizeof(float) * plane);
    for (i64 s = T * K - 1; s >= 0; --s) {
        const i64 t = s / K;
        const float r = rw[s % K];
        const float *restrict xs = X + s * plane;
        const float *restrict gc = gcnt ? gcnt + t * plane : 0;
        const float *restrict gv = gwsum ? gwsum + t * plane : 0;
        float *restrict gd = gdrive + t * plane;
        #pragma omp simd
        for (i64 q = 0; q < plane; ++q) {
            const float x = xs[q];
            const float gs = grec[q] + (gc ? gc[q] : 0.0f) + (gv ? r * gv[q] : 0.0f);
            const float den = slope * fabsf(x) + 1.0f;
            const float gx = gs * gscale / (den * den);
            const float keep = (!subtract && x > 0.0f) ? 0.0f : beta;
            const float g = gx + keep * gm[q];
            gm[q] = g;
            const float gy = g + alpha * gsyn[q];
            gsyn[q] = gy;
            gd[q] += gy;
        }
        if (s == 0) break;  /* no spikes before the first sub-step */
        const float *restrict xp = X + (s - 1) * plane;
        for (i64 p = 0; p < N; ++p) {
            /* grec[p] = sum_e wt_e gsyn[post_e] and, where p spiked at s - 1, the edges'
               weight gradients, over 32-trial chunks held in registers */
            float *restrict gr = grec + p * B;
            const float *restrict xpp = xp + p * B;
            float any = 0.0f;
            for (i64 b = 0; b < B; ++b) {
                sp[b] = xpp[b] > 0.0f ? 1.0f : 0.0f;
                any += sp[b];
            }
            for (i64 b0 = 0; b0 < b32; b0 += 32) {
                v8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                const v8 s0 = LD(sp + b0), s1 = LD(sp + b0 + 8), s2 = LD(sp + b0 + 16),
                         s3 = LD(sp + b0 + 24);
                for (i32 e = tp[p]; e < tp[p + 1]; ++e) {
                    const float *restrict gi = gsyn + (i64)tx[e] * B + b0;
                    const float we = wt[e];
                    const v8 g0 = LD(gi), g1 = LD(gi + 8), g2 = LD(gi + 16), g3 = LD(gi + 24);
                    a0 += we * g0; a1 += we * g1; a2 += we * g2; a3 += we * g3;
                    if (any != 0.0f) gwv[e] += (g0 * s0 + g1 * s1) + (g2 * s2 + g3 * s3);
                }
                ST(gr + b0, a0); ST(gr + b0 + 8, a1); ST(gr + b0 + 16, a2); ST(gr + b0 + 24, a3);
            }
            if (b32 < B) {  /* the last B % 32 trials */
                for (i64 b = b32; b < B; ++b) gr[b] = 0.0f;
                for (i32 e = tp[p]; e < tp[p + 1]; ++e) {
                    const float *restrict gi = gsyn + (i64)tx[e] * B;
                    const float we = wt[e];
                    float acc = 0.0f;
                    for (i64 b = b32; b < B; ++b) {
                        gr[b] += we * gi[b];
                        acc += gi[b] * sp[b];
                    }
                    gw[e] += acc;
                }
            }
        }
    }
    for (i32 e = 0; e < tp[N]; ++e) {
        float sum = 0.0f;
        for (int v = 0; v < 8; ++v) sum += gwv[e][v];
        gw[e] += sum;
    }
}
"""
