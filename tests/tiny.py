"""The tiny model preset several CLI tests train in seconds (one definition for all of them)."""

TINY_TOML = """[sheet]
n = 25
rule = "radius"
density = 0.25
[dynamics]
substeps = 1
[training]
steps = 3
batch = 4
eval_every = 3
eval_trials = 2
checkpoint_every = 3
threads = 1
"""
