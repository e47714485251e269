"""Per-task table of the 82-task circuit: rate vs snntorch vs Brian2 on the same test trials.

    python results/modcog82-spiking/table.py > results/modcog82-spiking/per-task.md
"""

import json
from pathlib import Path

HERE = Path(__file__).parent
snn = json.loads((HERE / "ev-distill6k-snn.json").read_text())
b2_path = HERE / "ev-distill6k-b2.json"
b2 = json.loads(b2_path.read_text()) if b2_path.is_file() else None


def cell(m: dict) -> str:
    lo, hi = m["ci"]["trial_success"]
    return f"{m['trial_success']:.3f} [{lo:.2f}, {hi:.2f}] / {m['step_accuracy']:.3f}"


rows = snn["comparison"]["per_task"]
head = "| task | rate | snntorch | Brian2 | snntorch / rate |"
print(f"Trial success [95% Wilson] / step accuracy, {snn['trials']} test trials per task "
      f"(seed {snn['seed']}, {snn['task_mode']} mode), the same trials for every column.\n")
print(head)
print("|---|---|---|---|---|")
for task, r in rows.items():
    other = cell(b2["comparison"]["per_task"][task]["spiking"]) if b2 else "–"
    ratio = "–" if r["ratio"] is None else f"{r['ratio']:.2f}"
    print(f"| {task} | {cell(r['rate'])} | {cell(r['spiking'])} | {other} | {ratio} |")
c = snn["comparison"]
mean_b2 = b2["comparison"] if b2 else None


def mean_cell(m: dict, ci: dict) -> str:
    return (f"**{m['trial_success']:.3f}** [{ci['trial_success'][0]:.3f}, "
            f"{ci['trial_success'][1]:.3f}] / {m['step_accuracy']:.3f}")


print(f"| **mean** | {mean_cell(c['mean_rate'], c['ci_rate'])} | "
      f"{mean_cell(c['mean_spiking'], c['ci_spiking'])} | "
      f"{mean_cell(mean_b2['mean_spiking'], mean_b2['ci_spiking']) if mean_b2 else '–'} | "
      f"{c['ratio']:.3f} |")
