# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # vlmprof engineering report

# %% tags=["parameters"]
run_dir = "results/default"

# %%
import json
from pathlib import Path

import pandas as pd

metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
pd.read_csv(Path(run_dir) / "tables" / "stage_ms.csv")
