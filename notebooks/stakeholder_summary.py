# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # vlmprof stakeholder summary

# %% tags=["parameters"]
run_dir = "results/default"

# %%
import json
from pathlib import Path

metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
print(metrics["aggregates"]["stage_ms"]["prefill"])
