# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # DeepSeek-OCR inference: where the time goes
#
# A one-page summary of one profiling run. Every figure on this page is computed from the
# run's measurements; the engineering report has the detail behind each.

# %% tags=["parameters"]
run_dir = "results/default"

# %%
# %matplotlib inline
import warnings

from IPython.display import Markdown, display

# transformers imports tqdm's notebook bars, which warn without ipywidgets: noise here.
warnings.filterwarnings("ignore", message="IProgress not found")
from vlmprof.metrics.telemetry import energy_sentence
from vlmprof.report import figures, summary, tables
from vlmprof.report.alt_text import describe_figures
from vlmprof.variants.comparison import read_comparison

describe_figures()
run = tables.load_run(run_dir)
metrics = run.metrics
notes = tables.provenance_notes(metrics)
Markdown(summary.bullets([f"**{note}**" for note in notes]) + "\n\n" + summary.headline(metrics))

# %%
if tables.timed(metrics):
    display(figures.page_time_figure(tables.page_split(metrics)))

# %%
tolerance = metrics["repeatability"]["tolerance"]
Markdown(summary.category_sentence(run.per_category, tolerance) or "")

# %% [markdown]
# ## The three biggest cost centres

# %%
centres = summary.cost_centres(metrics, run.operators)
if centres:
    display(
        Markdown(summary.cost_centre_table(centres).to_markdown()),
        Markdown(summary.bullets(summary.cost_centre_sentences(centres))),
    )
else:
    display(Markdown(tables.NOTHING_TIMED))

# %% [markdown]
# ## How well the hardware is used

# %%
Markdown(summary.bullets(summary.utilisation_findings(metrics)))

# %%
Markdown(energy_sentence(metrics.get("telemetry") or {"reason": "not recorded by this run"}))

# %% [markdown]
# ## What to do about it

# %%
found = summary.recommendations(metrics, run.operators, centres)
Markdown(summary.bullets(summary.recommendation_sentences(found)))

# %% [markdown]
# ## What the optimisations buy

# %%
Markdown(summary.bullets(summary.variant_findings(read_comparison(run_dir))))

# %% [markdown]
# ## Can these numbers be trusted?

# %%
Markdown(summary.reliability_sentence(metrics) + "\n\n" + summary.reproduce_sentence(metrics))
