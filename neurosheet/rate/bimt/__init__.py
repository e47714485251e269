"""BIMT (brain-inspired modular training) for the rate RNN on the sheet.

Liu, Gan & Tegmark's BIMT, applied to RNNs as in Liu, Khona, Fiete & Tegmark 2023 ("Growing
Brains"): every weight pays for the wire it needs on the sheet,

    cost = R(|W_rec| * (l0 + A d_rec)) + R(|W_in| * (l0 + A d_in)) + R(|W_out| * (l0 + A d_out))

(R = mean or sum over each matrix's weights; d = sheet distance, L1 by default; input and
readout units sit at the fixed border positions of their :class:`~neurosheet.graph.sheetgraph.Projection`),
the loss adds ``lambda(step) * cost``, and every ``swap_every`` steps the most connected
neurons move to the sheet slot that lowers the wiring cost most. A swap permutes rows and
columns of W_rec, rows of W_in, columns of W_out, b_rec and the optimizer's moment buffers,
so the network computes exactly the same function; only its layout changes.

``locality = 0`` turns the cost into plain L1 (coefficient ``lambda * l0``), the reference's
own ablation; ``lam = 0`` is no regularization. Pruning turns a trained circuit into a sparse
graph that the spiking and budget stages load like any run directory.

One job per module (import the one you need; this package imports none of them, so reading a
preset's ``[bimt]`` table never imports torch):

- :mod:`~neurosheet.rate.bimt.config`: :class:`BimtConfig` and the lambda schedules (pydantic only).
- :mod:`~neurosheet.rate.bimt.cost`: wiring geometry, the wiring cost, the closed-form swap
  deltas, the dense swap reference and the greedy relocation pass (numpy only).
- :mod:`~neurosheet.rate.bimt.regularizer`: :class:`BimtRegularizer`, the training-loop hook, and
  the function-preserving permutation of a model and its optimizer state (torch).
- :mod:`~neurosheet.rate.bimt.prune`: :func:`prune_circuit` and :func:`prune_run`.

The training loop needs two calls (see :class:`~neurosheet.rate.bimt.regularizer.BimtRegularizer`)::

    reg = BimtRegularizer(model, config, total_steps)
    loss = task_loss + reg.penalty(step)
    loss.backward(); optimizer.step()
    reg.after_step(step, optimizer)     # swaps every config.swap_every steps
"""
