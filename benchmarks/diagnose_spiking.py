"""Where does the converted spiking network depart from its rate network? (issue 11, step 1)

On held-out trials of a trained run, simulates side by side, on the same trials:
- the rate model integrated at K Euler sub-steps (the conversion's reference), recording
  both the rate at the end of every task step (what its readout sees) and the rate averaged
  over the task step (what a spike-count readout can at best see);
- the spiking network of the legacy conversion (``neurosheet.conversion``: IF soma floored at
  0, one global scale g, count readout), recording spike counts and its synaptic current.

Reports (all numbers on the same trials):
1. per-neuron spike rate vs rate: correlation, slope, relative error (task-step means);
2. the readout timing alone: the rate model decoded from its task-step-averaged rates;
3. latency at period boundaries: accuracy and "one ring unit off" at decision onset, and the
   sub-step shift that best aligns the spiking readout with the rate readout;
4. drift: population rate (Hz) and current error through the trial.

    PYTHONPATH=. python benchmarks/diagnose_spiking.py RUN_DIR [--trials 64] [--substeps 100]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from neurosheet.graph.circuit import load_run_circuit
from neurosheet.rate.evaluation import heldout_batches
from neurosheet.spiking.conversion import rate_logits
from neurosheet.spiking.persist import calibration_batch, valid_steps
from neurosheet.tasks import score
from neurosheet.tasks.trials import ring_distance


def _mats(circuit, dtype=torch.float64):
    w_rec = torch.as_tensor(circuit.rec_matrix().toarray(), dtype=dtype)
    w_in = torch.as_tensor(circuit.in_matrix().toarray(), dtype=dtype)
    w_out = torch.as_tensor(circuit.out_matrix().toarray(), dtype=dtype)
    b = torch.tensor(np.array(circuit.b_rec), dtype=dtype)
    b_out = torch.tensor(np.array(circuit.b_out), dtype=dtype)
    return w_rec, w_in, w_out, b, b_out


TAU_OUT = (10.0, 20.0, 30.0, 50.0, 144.0)


def rate_fine(circuit, inputs: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Rate model at k sub-steps: x and r at each task step's end, r averaged over the step,
    and r low-pass filtered with each of ``TAU_OUT`` (an LI readout of the rates), at the end."""
    w_rec, w_in, _, b, _ = _mats(circuit)
    a = circuit.params.substep_alpha(k)
    u = torch.as_tensor(inputs, dtype=torch.float64)
    t_max, batch, _ = u.shape
    x = torch.zeros(batch, circuit.n, dtype=torch.float64)
    r_end, r_mean, x_end = [], [], []
    decay = [np.exp(-circuit.params.dt_ms / k / tau) for tau in TAU_OUT]
    z = [torch.zeros_like(x) for _ in TAU_OUT]
    z_end: list[list[torch.Tensor]] = [[] for _ in TAU_OUT]
    for t in range(t_max):
        drive = u[t] @ w_in.T + b
        acc = torch.zeros_like(x)
        for _ in range(k):
            x = torch.lerp(x, torch.relu(x) @ w_rec.T + drive, a)
            acc += torch.relu(x)
            for i, d in enumerate(decay):
                z[i] = d * z[i] + (1 - d) * torch.relu(x)
        r_end.append(torch.relu(x))
        r_mean.append(acc / k)
        x_end.append(x)
        for i in range(len(TAU_OUT)):
            z_end[i].append(z[i])
    return {"r_end": torch.stack(r_end).numpy(), "r_mean": torch.stack(r_mean).numpy(),
            "x_end": torch.stack(x_end).numpy(),
            "r_li": [torch.stack(zz).numpy() for zz in z_end]}


class Legacy:
    """The legacy conversion (before issue 11): one global scale g = rho_max / r_p, with r_p
    the 99.9th percentile of the positive rates at K sub-steps on 64 calibration trials."""

    def __init__(self, circuit, cal, valid, k: int, rho_max: float = 1.0) -> None:
        rates = rate_fine(circuit, cal.inputs, k)["r_end"][valid]
        self.circuit, self.substeps = circuit, k
        self.g = rho_max / float(np.percentile(rates[rates > 0], 99.9))
        self.beta = (1.0 - circuit.params.alpha) ** (1.0 / k)


def spiking_legacy(sc: Legacy, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """The legacy map (as both backends ran it), float64, with its synaptic current I::

        I <- beta I + (1 - beta)(W_rec s / g + W_in u + b);  v <- v + g I;  s = [v > 1];
        v <- clip(v - s, 0, 1);   readout from spike counts per task step / (K g)
    """
    circuit = sc.circuit
    w_rec, w_in, _, b, _ = _mats(circuit)
    w_s = w_rec / sc.g
    u = torch.as_tensor(inputs, dtype=torch.float64)
    t_max, batch, _ = u.shape
    k, beta, g = sc.substeps, sc.beta, sc.g
    cur = torch.zeros(batch, circuit.n, dtype=torch.float64)
    v = torch.zeros_like(cur)
    s = torch.zeros_like(cur)
    counts, i_end = [], []
    for t in range(t_max):
        drive = u[t] @ w_in.T + b
        cnt = torch.zeros_like(cur)
        for _ in range(k):
            cur = beta * cur + (1 - beta) * (s @ w_s.T + drive)
            v = v + g * cur
            s = (v > 1.0).double()
            v = (v - s).clamp(0.0, 1.0)
            cnt += s
        counts.append(cnt)
        i_end.append(cur)
    return {"counts": torch.stack(counts).numpy(), "i_end": torch.stack(i_end).numpy()}


def decode(circuit, rates: np.ndarray) -> np.ndarray:
    w_out = circuit.out_matrix().toarray()
    return rates @ w_out.T + circuit.b_out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--trials", type=int, default=64, help="held-out trials per task")
    ap.add_argument("--substeps", type=int, default=100, help="K sim steps per task step")
    ap.add_argument("--seed", type=int, default=12345, help="held-out trial seed")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)

    circuit = load_run_circuit(args.run_dir)
    cal = calibration_batch(circuit, 64, 0)
    sc = Legacy(circuit, cal, valid_steps(cal), args.substeps)
    k, dt = args.substeps, circuit.params.dt_ms
    hz = 1000.0 / dt  # (spikes per task step) -> Hz
    batches = heldout_batches(circuit.tasks, args.trials, args.seed, rule_inputs=circuit.tasks)
    out: dict = {"run": args.run_dir, "trials_per_task": args.trials, "substeps": k,
                 "g": sc.g, "tasks": {}}
    pooled = {"spk": [], "rate": [], "rend": []}
    drift_rows = []
    print(f"g = {sc.g:.4f} spikes/sim-step per unit rate, K = {k}, {args.trials} trials/task, "
          f"seed {args.seed}")
    print("trial success of: the rate model at its trained sub-steps / at K; the rate model "
          "read out from task-step means (box) / through an LI filter of tau_out "
          f"{TAU_OUT} ms; the legacy spiking network")
    print(f"{'task':<12}{'rate own/K':>13}{'rate box':>10}{'spk trial':>10}"
          f"{'onset ok r/s':>14}{'onset 1-off s':>14}{'lag ms':>8}  rate LI(tau_out)")
    for name, batch in batches.items():
        rf = rate_fine(circuit, batch.inputs, k)
        sp = spiking_legacy(sc, batch.inputs)
        valid = valid_steps(batch)
        spk_rate = sp["counts"] / (k * sc.g)  # rate units, task-step mean
        y_rate = decode(circuit, rf["r_end"])
        y_box = decode(circuit, rf["r_mean"])
        y_spk = decode(circuit, spk_rate)
        tasks = tuple(batches)
        s_rate = score(y_rate, batch, tasks)["per_task"][name]
        s_box = score(y_box, batch, tasks)["per_task"][name]
        s_spk = score(y_spk, batch, tasks)["per_task"][name]
        s_own = score(rate_logits(circuit, batch.inputs)[0], batch, tasks)["per_task"][name]
        s_li = [score(decode(circuit, zz), batch, tasks)["per_task"][name]["trial_success"]
                for zz in rf["r_li"]]
        # decision onset: first decision step of each trial
        onset = batch.decision.argmax(0)
        cols = np.arange(batch.batch_size)
        tgt = batch.targets[onset, cols]
        p_rate = y_rate[onset, cols].argmax(-1)
        p_spk = y_spk[onset, cols].argmax(-1)
        ring = tgt > 0
        ok_r = float((p_rate == tgt)[ring].mean())
        ok_s = float((p_spk == tgt)[ring].mean())
        off1 = float(((p_spk > 0) & (ring_distance(p_spk - 1, tgt - 1) == 1))[ring].mean())
        # step after onset
        on1 = np.minimum(onset + 1, batch.lengths - 1)
        ok_s1 = float((y_spk[on1, cols].argmax(-1) == batch.targets[on1, cols])[ring].mean())
        # lag: fractional shift of the rate model's fine trajectory that best matches the
        # spiking readout = how far (ms) into the past the box/count readout looks
        # (the box average of a ramp lags its end value by half a step)
        lags = np.linspace(-1.0, 1.0, 41)
        y_end_prev = np.concatenate([y_rate[:1] * 0 + circuit.b_out, y_rate[:-1]])
        errs = []
        for lam in lags:
            # linear interpolation between step ends: y(t - lam*dt)
            if lam >= 0:
                ref = (1 - lam) * y_rate + lam * y_end_prev
            else:
                y_next = np.concatenate([y_rate[1:], y_rate[-1:]])
                ref = (1 + lam) * y_rate - lam * y_next
            errs.append(float(np.square(y_spk - ref)[valid].mean()))
        lag_ms = float(lags[int(np.argmin(errs))] * dt)
        # per-neuron agreement (task-step means, valid steps)
        a_s = spk_rate[valid]  # [V, N]
        a_r = rf["r_mean"][valid]
        pooled["spk"].append(a_s)
        pooled["rate"].append(a_r)
        pooled["rend"].append(rf["r_end"][valid])
        # drift: population rate (Hz) by step, spiking vs rate-model equivalent (g r K / step)
        steps = int(batch.lengths.max())
        for t in range(steps):
            m = valid[t]
            if m.sum() < max(4, batch.batch_size // 4):
                break
            drift_rows.append((name, t,
                               float(sp["counts"][t][m].mean() * hz),
                               float(rf["r_mean"][t][m].mean() * sc.g * k * hz),
                               float(np.abs(sp["i_end"][t][m] - rf["x_end"][t][m]).mean()),
                               float(np.abs(rf["x_end"][t][m]).mean())))
        out["tasks"][name] = {"rate_trial": s_rate["trial_success"],
                              "rate_trial_trained_substeps": s_own["trial_success"],
                              "rate_li_trial": dict(zip(map(str, TAU_OUT), s_li, strict=True)),
                              "rate_box_trial": s_box["trial_success"],
                              "rate_step": s_rate["step_accuracy"],
                              "rate_box_step": s_box["step_accuracy"],
                              "spiking_trial": s_spk["trial_success"],
                              "spiking_step": s_spk["step_accuracy"],
                              "onset_correct_rate": ok_r, "onset_correct_spiking": ok_s,
                              "onset_one_off_spiking": off1, "onset_plus1_correct_spiking": ok_s1,
                              "lag_ms": lag_ms}
        print(f"{name:<12}{s_own['trial_success']:>6.3f}{s_rate['trial_success']:>7.3f}"
              f"{s_box['trial_success']:>10.3f}"
              f"{s_spk['trial_success']:>10.3f}{ok_r:>7.2f}/{ok_s:<6.2f}{off1:>14.2f}"
              f"{lag_ms:>8.0f}  " + " ".join(f"{v:.3f}" for v in s_li))
    a_s = np.concatenate(pooled["spk"])
    a_r = np.concatenate(pooled["rate"])
    corr, slope, rel = [], [], []
    for i in range(a_s.shape[1]):
        xs, xr = a_s[:, i], a_r[:, i]
        if xr.std() > 1e-9 and xs.std() > 1e-9:
            corr.append(np.corrcoef(xs, xr)[0, 1])
        if (xr * xr).sum() > 0:
            slope.append(float((xs * xr).sum() / (xr * xr).sum()))
            rel.append(float(np.abs(xs - xr).mean() / max(xr.mean(), 1e-9)))
    corr, slope, rel = map(np.asarray, (corr, slope, rel))
    silent_spk = float(((a_s.sum(0) == 0) & (a_r.sum(0) > 0)).mean())
    print(f"per neuron (task-step means, {a_s.shape[0]} trial-steps): corr median "
          f"{np.median(corr):.3f} (10th pct {np.percentile(corr, 10):.3f}); slope spk/rate "
          f"median {np.median(slope):.3f} (10-90 pct {np.percentile(slope, 10):.2f}-"
          f"{np.percentile(slope, 90):.2f}); mean |err|/mean rate median {np.median(rel):.3f}; "
          f"silent in spikes but active in rate: {silent_spk:.1%}")
    spikes_per_step = a_s * k * sc.g
    print(f"spikes per neuron per task step: mean {spikes_per_step.mean():.2f}, "
          f"active neurons' median {np.median(spikes_per_step[spikes_per_step > 0]):.1f}")
    out["per_neuron"] = {"corr_median": float(np.median(corr)),
                         "corr_p10": float(np.percentile(corr, 10)),
                         "slope_median": float(np.median(slope)),
                         "slope_p10": float(np.percentile(slope, 10)),
                         "slope_p90": float(np.percentile(slope, 90)),
                         "rel_err_median": float(np.median(rel)),
                         "silent_spiking_active_rate": silent_spk,
                         "spikes_per_step_mean": float(spikes_per_step.mean())}
    # drift table: by step index (pooled over tasks)
    rows = np.array([(t, s, r, e, x) for _, t, s, r, e, x in drift_rows])
    print(f"{'step':>5}{'spk Hz':>9}{'rate-equiv Hz':>15}{'|I - x|':>9}{'|x|':>7}")
    drift = []
    for t in sorted(set(rows[:, 0].astype(int))):
        sel = rows[:, 0] == t
        m = rows[sel].mean(0)
        drift.append({"step": int(t), "spiking_hz": m[1], "rate_equiv_hz": m[2], "i_err": m[3],
                      "x_abs": m[4]})
        if t % 3 == 0:
            print(f"{t:>5}{m[1]:>9.1f}{m[2]:>15.1f}{m[3]:>9.3f}{m[4]:>7.3f}")
    out["drift"] = drift
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
