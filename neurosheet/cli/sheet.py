"""``neurosheet sheet``: place neurons, wire them, print the graph's numbers, plot or save it."""

from __future__ import annotations

import argparse

from neurosheet.cli import options as O
from neurosheet.cli.common import non_negative, positive_int, print_json
from neurosheet.graph.sheet import LAYOUTS, make_sheet
from neurosheet.graph.wiring import RULES, build_graph


def add_parser(subs: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subs.add_parser("sheet", help="build a sheet and its wiring; print synapse counts",
                        description="Place N neurons on a sheet and wire them with a rule.")
    # N is validated by make_sheet so that N <= 0 gets the library's message.
    O.add(p, "--n", required=True)
    p.add_argument("--rule", choices=RULES, default="radius", help="wiring rule (default radius)")
    O.add(p, "--density")
    p.add_argument("--radius", type=non_negative, help="cut-off radius (radius rule)")
    O.add(p, "--scale")
    p.add_argument("--p0", type=float, default=1.0, help="kernel probability at distance 0")
    p.add_argument("--layout", choices=LAYOUTS, default="grid", help="neuron placement")
    p.add_argument("--periodic", action="store_true", help="wrap the sheet into a torus")
    p.add_argument("--no-self", action="store_true", help="drop self-connections (autapses)")
    p.add_argument("--fixed-fan-in", action="store_true",
                   help="random rule: give every neuron the same fan-in")
    O.add(p, "--seed", default=0)
    O.add(p, "--plot")
    p.add_argument("--neuron", type=int, help="neuron whose wiring the plot shows (default: centre)")
    p.add_argument("--save", metavar="PATH", help="save the graph (.npz)")
    O.add(p, "--json")
    p.add_argument("--n-inputs", type=positive_int, help="attach an input projection of this size")
    p.add_argument("--n-outputs", type=positive_int, help="attach a readout of this size")
    p.add_argument("--input-region", default="all", help="sheet region inputs reach (e.g. left:0.25)")
    p.add_argument("--readout-region", default="all", help="sheet region the readout reads")
    return p


def run(args: argparse.Namespace) -> int:
    sheet = make_sheet(args.n, args.layout, periodic=args.periodic, seed=args.seed)
    density = args.density
    if args.rule in ("radius", "gaussian", "exponential") and density is None and \
            args.radius is None and args.scale is None:
        density = 0.05
    graph = build_graph(sheet, args.rule, density=density, radius=args.radius, scale=args.scale,
                        p0=args.p0, self_connections=not args.no_self,
                        fixed_fan_in=args.fixed_fan_in, seed=args.seed)
    if args.n_inputs or args.n_outputs:
        from neurosheet.graph.projections import input_projection, readout_projection

        graph = graph.with_projections(
            input_projection(sheet, args.n_inputs, args.input_region) if args.n_inputs else None,
            readout_projection(sheet, args.n_outputs, args.readout_region) if args.n_outputs else None,
        )
    if args.neuron is not None and not 0 <= args.neuron < graph.n:
        from neurosheet.core.errors import NeurosheetError

        raise NeurosheetError(f"--neuron {args.neuron} is not in 0..{graph.n - 1}")
    summary = graph.summary()
    if args.save:
        graph.save(args.save)
        summary["saved"] = args.save
    if args.plot:
        from neurosheet.reports.plots import save_figure
        from neurosheet.reports.plots.sheet import sheet_figure

        save_figure(sheet_figure(graph, args.neuron), args.plot)
        summary["plot"] = args.plot
    if args.json:
        print_json(summary)
    else:
        print(_table(summary))
    return 0


def _table(s: dict) -> str:
    lines = [
        f"neurons            {s['n']}",
        f"rule               {s['rule']}" + (f" (radius {s['radius']:.4g})" if "radius" in s else "")
        + (f" (scale {s['scale']:.4g})" if "scale" in s else ""),
        f"recurrent synapses {s['synapses']}  (self {s['self_connections']})",
        f"density            {s['density']:.4%}"
        + (f"  (target {s['target_density']:.4%})" if "target_density" in s else ""),
        f"fan-in             mean {s['mean_fan_in']:.2f}, max {s['max_fan_in']}",
        f"fan-out            mean {s['mean_fan_out']:.2f}, max {s['max_fan_out']}",
        f"wiring length      total {s['total_length']:.6g}, mean {s['mean_length']:.4g}",
    ]
    if s["input_synapses"] or s["readout_synapses"]:
        lines.append(f"input / readout    {s['input_synapses']} / {s['readout_synapses']} synapses")
    for key in ("saved", "plot"):
        if key in s:
            lines.append(f"{key:<19}{s[key]}")
    return "\n".join(lines)
