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

/* Forward. drive: [T, N, B]; noise: [T K, N, B] or NULL (already scaled); rw: [K]. Scratch:
   syn, mem, rec ([N, B]), evp, evb ([N B] each). X: [T K, N, B] or NULL (not kept). Outputs:
   cnt, wsum ([T, N, B], zeroed by the caller). */
void nss_forward(i64 N, i64 B, i64 T, i64 K, int subtract, float alpha, float beta,
                 float theta, const i32 *restrict tp, const i32 *restrict tx,
                 const float *restrict wt, const float *restrict drive,
                 const float *restrict noise, const float *restrict rw,
                 float *restrict syn, float *restrict mem, float *restrict rec,
                 i32 *restrict evp, i32 *restrict evb, float *restrict X,
                 float *restrict cnt, float *restrict wsum) {
    const i64 plane = N * B;
    const float theta2 = 2.0f * theta;
    i64 nev = 0;
    memset(syn, 0, sizeof(float) * plane);
    memset(mem, 0, sizeof(float) * plane);
    for (i64 t = 0; t < T; ++t) {
        const float *restrict d = drive + t * plane;
        float *restrict c = cnt + t * plane, *restrict w = wsum + t * plane;
        for (i64 j = 0; j < K; ++j) {
            const i64 s = t * K + j;
            memset(rec, 0, sizeof(float) * plane);
            for (i64 q = 0; q < nev; ++q) {  /* the spikes of the previous sub-step */
                float *restrict rb = rec + evb[q];
                for (i32 e = tp[evp[q]]; e < tp[evp[q] + 1]; ++e) rb[(i64)tx[e] * B] += wt[e];
            }
            nev = 0;
            const float *restrict ns = noise ? noise + s * plane : 0;
            float *restrict xs = X ? X + s * plane : 0;
            const float r = rw[j];
            for (i64 i = 0; i < N; ++i) {
                for (i64 b = 0; b < B; ++b) {
                    const i64 q = i * B + b;
                    const float sy = alpha * syn[q] + (rec[q] + d[q]);
                    syn[q] = sy;
                    const float m = beta * mem[q] + (ns ? sy + ns[q] : sy);
                    const float x = m - (subtract && mem[q] > theta ? theta2 : theta);
                    if (xs) xs[q] = x;
                    if (x > 0.0f) {
                        mem[q] = subtract ? m - theta : 0.0f;
                        c[q] += 1.0f;
                        w[q] += r;
                        evp[nev] = (i32)i;
                        evb[nev] = (i32)b;
                        ++nev;
                    } else {
                        mem[q] = m;
                    }
                }
            }
        }
    }
}

/* Backward. X: the forward's [T K, N, B]; gcnt, gwsum: [T, N, B] or NULL. Outputs: gdrive
   ([T, N, B]) and gw ([nnz], pre-major order), both zeroed by the caller. Scratch: gm, gsyn,
   grec ([N, B]), sb ([B] int32). */
void nss_backward(i64 N, i64 B, i64 T, i64 K, int subtract, float alpha, float beta,
                  float gscale, float slope, const i32 *restrict tp, const i32 *restrict tx,
                  const float *restrict wt, const float *restrict X,
                  const float *restrict rw, const float *restrict gcnt,
                  const float *restrict gwsum, float *restrict gdrive, float *restrict gw,
                  float *restrict gm, float *restrict gsyn, float *restrict grec,
                  i32 *restrict sb) {
    const i64 plane = N * B;
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
            float *restrict gr = grec + p * B;
            const float *restrict xpp = xp + p * B;
            for (i64 b = 0; b < B; ++b) gr[b] = 0.0f;
            i64 c = 0;
            for (i64 b = 0; b < B; ++b)
                if (xpp[b] > 0.0f) sb[c++] = (i32)b;
            for (i32 e = tp[p]; e < tp[p + 1]; ++e) {
                const float we = wt[e];
                const float *restrict gi = gsyn + (i64)tx[e] * B;
                #pragma omp simd
                for (i64 b = 0; b < B; ++b) gr[b] += we * gi[b];
                if (c) {  /* event-driven: only the trials where p spiked */
                    float acc = 0.0f;
                    for (i64 k = 0; k < c; ++k) acc += gi[sb[k]];
                    gw[e] += acc;
                }
            }
        }
    }
}
"""
