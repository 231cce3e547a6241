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
from vlmprof.metrics.document import Telemetry
from vlmprof.metrics.telemetry import energy_sentence
from vlmprof.report import figures
from vlmprof.report import sections as report
from vlmprof.report.alt_text import describe_figures

describe_figures()
run = report.load_run(run_dir)
metrics = run.metrics
notes = report.provenance_notes(metrics)
Markdown(report.bullets([f"**{note}**" for note in notes]) + "\n\n" + report.headline(metrics))

# %%
if report.timed(metrics):
    display(figures.page_time_figure(report.end_to_end_split(metrics)))

# %%
tolerance = metrics.repeatability.tolerance
Markdown(report.category_sentence(report.category_gap(run.per_category, tolerance)) or "")

# %% [markdown]
# ## The three biggest cost centres

# %%
centres = report.cost_centres(metrics, run.operators)
if centres:
    display(
        Markdown(report.cost_centre_table(centres).to_markdown()),
        Markdown(report.bullets(report.cost_centre_sentences(centres))),
    )
else:
    display(Markdown(report.NOTHING_TIMED))

# %% [markdown]
# ## How well the hardware is used

# %%
Markdown(report.bullets(report.utilisation_sentences(report.utilisation_findings(metrics))))

# %%
Markdown(
    energy_sentence(
        metrics.telemetry or Telemetry(available=False, reason="not recorded by this run")
    )
)

# %% [markdown]
# ## What a page costs

# %%
cost = metrics.cost
Markdown(report.cost_sentence(cost))

# %%
if cost is not None and cost.available:
    display(
        Markdown(report.cost_table(cost).map(report.format_number).to_markdown()),
        Markdown("Assumed:\n\n" + report.bullets(cost.assumptions, literal=True)),
        Markdown(
            "For scale, the published throughput of DeepSeek-OCR (batched, not measured "
            "here):\n\n" + report.published_table(cost).to_markdown(index=False)
        ),
    )

# %%
models = report.read_model_comparison(run_dir)
if models:
    by_model = report.models_table(models)
    display(
        Markdown("### By model\n\n" + report.cheapest_sentence(models)),
        figures.models_figure(report.page_parts(models), models["output_tokens"]),
        Markdown(by_model.map(report.format_number).to_markdown()),
    )

# %% [markdown]
# ## What to do about it

# %%
found = report.recommendations(metrics, run.operators, centres)
Markdown(report.bullets(report.recommendation_sentences(found)))

# %% [markdown]
# ## What the optimisations buy

# %%
comparison = report.read_comparison(run_dir)
bought = report.variant_findings(comparison)
slo = report.slo_sentence(comparison) if comparison else None
display(Markdown(report.bullets(report.variant_sentences(bought) + ([slo] if slo else []))))
if comparison:
    display(figures.throughput_latency_figure(report.settings_table(comparison)))

# %% [markdown]
# ## Can these numbers be trusted?

# %%
Markdown(report.reliability_sentence(metrics) + "\n\n" + report.reproduce_sentence(metrics))
