# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # vlmprof engineering report
#
# Where the time of DeepSeek-OCR inference goes, stage by stage, and how well each stage uses
# the hardware. **Prefill** is the first forward pass from inputs on the device to the first
# logits, vision included: vision (SAM, CLIP, projector) is *nested* in prefill, and LLM
# prefill is prefill minus vision. **Decode** is the token loop after the first token. Every
# number below comes from this run's `metrics.json` and tables.

# %% tags=["parameters"]
run_dir = "results/default"

# %%
# %matplotlib inline
import warnings

from IPython.display import Markdown, display

# transformers imports tqdm's notebook bars, which warn without ipywidgets: noise here.
warnings.filterwarnings("ignore", message="IProgress not found")
from vlmprof.metrics import host
from vlmprof.metrics import telemetry as energy
from vlmprof.metrics.document import Telemetry
from vlmprof.report import figures
from vlmprof.report import sections as report
from vlmprof.report.alt_text import describe_figures

describe_figures()
run = report.load_run(run_dir)
metrics = run.metrics
telemetry = metrics.telemetry or Telemetry(available=False, reason="not recorded by this run")
Markdown(report.headline(metrics))

# %% [markdown]
# ## Throughput
#
# What the run generated per second, three ways, each a total over a total. **End to end**
# is what a user gets, and the headline: the run's wall time on the host's clock, each
# batch's wait for its pages (their loading and preprocessing) and then its run, one after
# another, the measurement's own work between them (warm-up, the gate's reference
# generations, the count of each page's work, later repeats) left out. **GPU side** counts
# prefill and decode alone, a batch's time once; **decode only** the token loop alone.

# %%
display(report.styled(report.rates_table(metrics)))
walls = report.shard_walls_table(metrics)
if len(walls):
    display(
        Markdown(
            "Each shard's wall time end to end, beside the time from its first page read to "
            "its last token with the measurement's own work in it:"
        ),
        report.styled(walls),
    )

# %% [markdown]
# ## Environment and provenance

# %%
Markdown(report.bullets(report.provenance_notes(metrics)) or "Timed on a CUDA device.")

# %%
report.styled(report.environment_table(metrics))

# %%
shards = report.shards_table(metrics)
if len(shards):
    display(
        Markdown("Where each shard ran, with the median clocks of its runs:"), report.styled(shards)
    )

# %% [markdown]
# Cost of the pipeline's own jobs (Snakemake benchmark files: wall time and peak resident
# memory of each job; these are not stage timings).

# %%
report.styled(report.benchmark_table(run.benchmarks))

# %% [markdown]
# ## The input set

# %%
page_facts = report.input_table(metrics, run.subset)
failed_pages = report.failed_pages_table(metrics, run.subset)
report.thumbnail_grid(
    run.subset,
    page_facts,
    report.unprofiled_pages(failed_pages, run.per_image),
    metrics.config["dataset"]["max_pixels"],
)

# %% [markdown]
# Each page with its category, size, the crops gundam-style tiling cut it into and the image
# tokens the decoder sees; more crops mean more vision work and a longer prefill. A page
# drawn as a box was not profiled: the Failures section lists every failed page and why.

# %%
report.styled(page_facts)

# %% [markdown]
# ## Per-stage timing
#
# Over all ok records (decode per token: over every decode step). Nested stages are part of
# the stage named in "nested in" and must not be added to it.

# %%
report.styled(report.stage_timing_table(run.stage_ms))

# %% [markdown]
# ## Stage shares

# %%
timed = report.timed(metrics)
if timed:
    run_split = report.run_split(metrics)
    prefill_split = report.prefill_split(metrics)
    display(figures.stage_share_figure(run_split, prefill_split))
else:
    display(Markdown(report.NOTHING_TIMED))

# %% [markdown]
# Read the top bar for a page end to end (the host's image load and preprocessing, then
# prefill and decode on the device), the bottom one for what prefill is made of.
# The vision remainder is vision minus SAM, CLIP and projector: vision time no sub-stage
# timer covers (zero when vision is recorded as the sum of its sub-stages; the glue between
# them is then part of LLM prefill).

# %%
batch_timeline = report.batch_timeline(run.records)
if len(batch_timeline):
    display(figures.batch_timeline_figure(batch_timeline))

# %%
Markdown(report.binding_sentence(metrics.pipeline))

# %% [markdown]
# One batch on the host's clock (the last of the largest size, past the first batch's
# warm-up): each page's loading and its preprocessing (inline, or in worker processes
# running ahead with `workers`), how long the timing pass waited for each page, and the
# batch's prefill and decode on the GPU. Between the wait and the prefill runs the batch's
# untimed reference generation (the gate's outputs, also its warm-up). The sentence above
# names the side that binds the run: the host when the GPU waited over 10% of the time end
# to end for its inputs, else the GPU.

# %%
decode_slots = report.decode_slots_table(metrics)
if len(decode_slots):
    display(report.styled(decode_slots))

# %% [markdown]
# Static batching's cost: a batch decodes until its longest page ends, every page keeping
# its slot, so a page that ends earlier (its length, `output_length`, or its end-of-sequence)
# leaves its slot running idle. Slot-steps are each batch's pages times its decode steps;
# the idle share is how many of them ran for pages that had ended. Decode tokens/s is given
# both ways: the useful tokens over decode time, and every slot-step over the same time (the
# rate were no page to end early). With every page at `max_new_tokens` nothing idles.

# %%
if timed:
    display(report.styled(run_split), report.styled(prefill_split))

# %% [markdown]
# ## Per page

# %%
if timed:
    per_image = report.per_image_parts(run.per_image)
    display(figures.per_image_figure(per_image))
else:
    display(Markdown(report.NOTHING_TIMED))

# %% [markdown]
# Pages with more crops spend longer in SAM and in LLM prefill (more image tokens); decode
# follows each page's tokens (`tokens`: every page `max_new_tokens` unless `output_length`
# gives each its own), and in a batch it is the batch's, its longest page's.

# %%
if timed:
    display(report.styled(per_image))

# %% [markdown]
# ## Per category
#
# Stage times by page category (OmniDocBench: the page's data source), each the mean over
# the category's ok records with its CV (std / mean, over pages and repeats together). Ok
# pages have at least one ok repeat, failed pages at least one failed repeat; a category
# whose pages all failed shows its counts with empty times.

# %%
report.styled(report.category_table(run.per_category))

# %%
tolerance = metrics.repeatability.tolerance
Markdown(
    report.category_sentence(report.category_gap(run.per_category, tolerance))
    or "No two categories with timed pages differ by more than the repeatability tolerance "
    f"(+/-{report.percent(tolerance)}) in these stages."
)

# %% [markdown]
# ## Decode latency: TTFT and time per output token

# %%
report.styled(report.decode_latency_table(metrics))

# %%
if timed:
    display(
        figures.decode_latency_figure(
            report.ttft_values(run.records),
            report.decode_steps(run.records),
            metrics.aggregates.stage_ms,
        )
    )

# %% [markdown]
# Left: time to first token of every record (mostly prefill). Right: every decode step; a
# long tail right of p90 means occasional slow steps.

# %% [markdown]
# ## MFU and MBU per stage
#
# MFU = achieved FLOP/s over peak FLOP/s; MBU = achieved bytes/s over peak bandwidth. Each is
# given against the datasheet peak of the device and against the peak calibrated on this
# machine (a matmul and a copy micro-benchmark). MBU divides the necessary bytes: weights
# read, the KV cache read and written, and the inputs and outputs of matmul-class ops, the
# least any implementation moves. Beside them stand the bytes as implemented: every op's
# reads and writes (SAM's materialised attention bias, norms, activations, residual adds,
# layout copies included), counted over an untimed run of each page; an implementation that
# removes traffic moves fewer of these while its necessary bytes stay. FLOPs count causal
# attention as the fused kernels compute it: each query against the keys up to itself,
# L(L+1)/2 pairs in a prefill of L tokens (vision attention is bidirectional: the square).

# %%
report.styled(report.peaks_table(metrics))

# %%
utilisation = report.utilisation_table(run.mfu, run.mbu)
report.styled(utilisation)

# %%
figures.utilisation_figure(utilisation, report.missing_peak_reasons(metrics))

# %% [markdown]
# Prefill is judged by MFU (compute), decode by MBU: at batch size 1 a decode step reads all
# active weights for one token, so memory bandwidth is its ceiling.

# %%
report.styled(report.decode_roofline_table(metrics))

# %% [markdown]
# ## Roofline

# %%
roofline = report.roofline_points(metrics)
report.styled(roofline)

# %%
if timed:
    display(figures.roofline_figure(roofline, metrics.peaks))

# %% [markdown]
# A stage left of the ridge (where the slanted and flat roofs meet) is limited by memory
# bandwidth, right of it by compute; the gap below its roof is what the stage leaves unused.
# Intensity is FLOPs over the necessary bytes MBU counts (weights, KV cache, matmul inputs
# and outputs); the bytes as implemented stand beside them in the table. A point above the
# calibrated roof means the micro-benchmark's shapes reach less than this stage does.

# %% [markdown]
# ## Variants
#
# The baseline (this run's own settings, by default the released code path) against named
# optimisation variants and sweep points, each profiled on the same pages. An optimisation
# counts only after its correctness gate passes: fed the baseline's tokens, its logits at
# every step are compared with a float64 run of the released code (the oracle) and must
# stay as close to it as the baseline's own. A sweep point (other preset, mode or crops)
# does different work, so its ratio is shown but it is never an optimisation.

# %%
comparison = report.read_comparison(run_dir)
no_variants = report.comparison_note(comparison)
if no_variants:
    display(Markdown(no_variants))
else:
    display(report.styled(report.gate_table(comparison)))
    meaning = report.gate_meaning(report.gated(comparison))
    display(Markdown(meaning or "No variant was gated: every variant is a sweep point."))

# %%
if not no_variants:
    display(report.styled(report.comparison_table(comparison)))
    display(figures.variant_figure(report.chart_frame(comparison), comparison["peak"]))

# %% [markdown]
# "x baseline" is baseline time over variant time over the pages both ran (above 1: faster);
# with an A/A control (the baseline profiled again after the variants) the baseline time is
# the two averaged page by page. The 95% interval holds the page-to-page noise and the drift
# between runs the control measured per shard; the "noise floor" is the smallest change the
# run could have called. "faster" or "slower" needs a p of at most 5% after Holm's correction
# (the whole page across the variants, every other stage x variant apart); one shard
# measures drift once, so only large changes clear it: `shards: 4` resolves a few percent.
# Below 8 pages no interval is given ("too few pages"); without a control nothing is judged.
# A variant that failed its gate keeps its times but gets no ratio. "x from roofline" is
# the stage's time over the time its FLOPs and bytes need at the peak (1 would be at the
# hardware limit); stages whose bytes are not counted are judged by compute alone, so theirs
# is an upper limit.

# %%
if not no_variants:
    display(report.styled(report.bound_table(comparison)))
    furthest = report.variant_findings(comparison).furthest
    if furthest is not None:
        display(Markdown(report.furthest_sentence(furthest)))

# %% [markdown]
# Each stage on the variant it runs fastest on (the baseline where none is measurably
# faster), and how far that leaves it from its roofline bound: the stage furthest from its
# bound is where optimisation pays off next.

# %%
if not no_variants:
    settings = report.settings_table(comparison)
    display(report.styled(settings))
    slo = report.slo_sentence(comparison)
    if slo is not None:
        display(Markdown(slo))
    display(figures.throughput_latency_figure(settings))

# %%
if not no_variants:
    timelines = {
        name: report.batch_timeline(records)
        for name, records in report.arm_records(run_dir, comparison).items()
    }
    if any(len(timeline) for timeline in timelines.values()):
        display(figures.arm_timelines_figure(timelines, report.timeline_titles(comparison)))
    display(Markdown(report.bullets(report.binding_sentences(comparison))))

# %% [markdown]
# A steady batch of each setting on the host's clock: its pages' loading and preprocessing,
# the timing pass's wait for each page and the GPU's prefill and decode, with the side that
# binds each setting. The settings table gives each one's end-to-end rate as a share of its
# GPU side's, the KV cache of its largest batch (computed from the model's dimensions: bytes
# per token per layer x layers x the batch's longest prompt and generated tokens x pages)
# beside the peak memory measured, and the pages of any batch that did not fit (ran out of
# the device's memory: a finding of that batch size, not a failure of the run).

# %% [markdown]
# Each setting's measured rates (end to end, then the GPU side and decode only) and what a
# page at its real length (`cost.output_tokens`) costs on it end to end: its latency at p90
# across pages (its load and preprocessing, its batch's wait for its pages and its batch's
# run), pages per GPU-day, and money per 1,000 pages where `cost.gpu_hour_price` or an
# energy price is set. The figure plots throughput against latency, one point per setting
# (a batch-size sweep is one point per batch size). With `cost.latency_slo_ms` the cheapest
# setting within that p90 latency is named (the baseline or a gate-passed variant).

# %% [markdown]
# ## Timeline of the operator pass

# %%
timeline = report.timeline_table(metrics)
if len(timeline):
    display(
        report.styled(timeline),
        Markdown(
            "Busy is the share of a stage's wall time covered by kernels (on CPU: top-level "
            'operators); "launch-bound" means below 50% busy with work items under 20 us each. '
            # The timed figures: vlmprof.metrics.dilation.
            "Under the profiler that wall time is the profiler pass's own, which the profiler "
            "slows; busy vs timed stage is the kernel time from the profiler pass over the "
            "timing pass's stage time (per decode step for decode, over the pages both passes "
            "ran), profiler dilation is how many times slower the profiler pass ran, and the "
            "verdict and timed launch overhead use it."
        ),
    )
    for stage in ("prefill", "decode"):
        if stage in metrics.timeline:
            busy, how = report.quoted_busy(metrics.timeline[stage])
            display(Markdown(f"{stage.capitalize()} is busy {report.percent(busy)}: {how}."))
else:
    display(Markdown(report.NO_OPERATOR_PASS))

# %% [markdown]
# ## Operators

# %%
if run.operators is None:
    display(Markdown(report.NO_OPERATOR_PASS))
else:
    display(report.styled(report.top_operators(run.operators)))

# %%
if run.operators is not None:
    categories = report.operator_categories(run.operators)
    display(
        report.styled(categories),
        figures.operator_category_figure(categories),
        Markdown(
            "Self times from the separate torch.profiler pass (its overhead never reaches the "
            "stage timings above); the bars show which stage each category's time falls in."
        ),
    )

# %% [markdown]
# ## Static compute
#
# Parameters of the model as built, and FLOPs per stage and view size counted three ways:
# the analytic formulas (the headline), torch's FlopCounterMode and fvcore (x2). Causal
# attention counts L(L+1)/2 (query, key) pairs, as the fused kernels compute it, in the
# formulas and in FlopCounterMode's SDPA formula alike (torch's own counts the square).

# %%
report.styled(report.params_table(metrics))

# %%
counted_note = report.counted_work_note(metrics)
Markdown(counted_note) if counted_note else report.styled(report.static_crosscheck(run.static))

# %% [markdown]
# fvcore cannot see inside `scaled_dot_product_attention`; "fvcore adjusted" adds the
# analytic attention FLOPs back and removes fvcore's elementwise estimates.

# %% [markdown]
# ## What a page costs
#
# A page of `cost.output_tokens` output tokens at the run's batch size, from the measured
# wall time end to end: each batch's wait for its pages and its run, the run taken to that
# length by the decode steps it lacks at its measured time per step (a floor: a longer
# output reads a longer KV cache). Pages per GPU-day (on a CPU run, CPU-day) and the price
# follow from it; a page's latency is its own loading and preprocessing, its batch's wait
# for the pages read after it and its batch's run, p50 and p90 across the pages. The GPU
# side (prefill and decode alone) stands beside them. What each figure assumes is listed
# under it.

# %%
cost = metrics.cost
if cost is not None and cost.available:
    display(
        report.styled(report.cost_table(cost)),
        Markdown("Assumed:\n\n" + report.bullets(cost.assumptions, literal=True)),
        report.published_table(cost),
    )
Markdown(report.cost_sentence(cost))

# %% [markdown]
# ## Cost per page by model
#
# The run's own model (`baseline`) and each model under `models:`, profiled on the same
# pages with the same settings, each on its released decode path and on its best path (the
# fastest decode it takes on this device: graphed on CUDA, a static KV cache on a CPU;
# `best_paths`): the vision tokens and prompt each page becomes, each stage's mean time,
# decode throughput, MFU and MBU, and what a page of `cost.output_tokens` tokens costs. A
# best path is fed its released path's tokens and judged by the correctness gate against
# it; one that fails is shown failed and never named the cheapest.

# %%
models = report.read_model_comparison(run_dir)
if models:
    display(report.styled(report.models_table(models)))
    display(figures.models_figure(report.page_parts(models), models["output_tokens"]))
Markdown(report.cheapest_sentence(models) if models else report.NO_MODELS)

# %% [markdown]
# ## Telemetry
#
# GPU energy, power and clocks, sampled through NVML during every timed run by a process of
# its own. The device's energy counter is read less often than the other fields (one read
# costs milliseconds; `telemetry.counter_interval_ms`); a stage's energy is the power trace
# over the stage's window, scaled so that the trace matches the counter over at least 2 s of
# readings around the run (power alone where the GPU has no counter). Prefill and decode
# need not add up to the run (the argmax between them).

# %%
if telemetry.available:
    display(report.styled(energy.energy_table(telemetry)))
Markdown(energy.energy_sentence(telemetry))

# %%
timeline = telemetry.timeline
if timeline is not None:
    import matplotlib.pyplot as plt

    columns = timeline.columns
    fig, clock_ax = plt.subplots(figsize=(9, 3.5))
    clock_ax.plot(columns["t_s"], columns["sm_clock_mhz"], color="tab:blue")
    clock_ax.set(xlabel="time since the run started (s)", ylabel="SM clock (MHz)")
    clock_ax.set_title(
        f"Clock and power of page {timeline.image_id}, repeat {timeline.repeat}"
    )
    power_ax = clock_ax.twinx()
    power_ax.plot(columns["t_s"], columns["power_w"], color="tab:red")
    power_ax.set_ylabel("power (W)", color="tab:red")
    for stage, colour in (("prefill", "tab:orange"), ("decode", "tab:green")):
        clock_ax.axvspan(*timeline.stage_windows_s[stage], color=colour, alpha=0.15, label=stage)
    clock_ax.legend(loc="lower right")
    display(fig)
    plt.close(fig)

# %% [markdown]
# The run's stages shaded on the SM clock (blue) and board power (red) of one run: a clock
# that sags within the run, or power pinned at the limit, means the timings above are not at
# full speed. NVML's power reading is averaged by the driver on many GPUs, so it lags the
# stage boundaries: the split of energy between short stages inherits that lag, the run's
# total does not.

# %% [markdown]
# ## Assumptions

# %%
Markdown(report.bullets(metrics.assumptions, literal=True))

# %% [markdown]
# ## Repeatability
#
# For each stage, how far a repeat of a page strays from that page's mean, against the
# configured tolerance.

# %%
report.styled(report.repeatability_table(metrics))

# %% [markdown]
# Runs the telemetry guard distrusts: thermal or power throttling seen, or a median SM clock
# more than the configured fraction (`telemetry.clock_drop_fraction`) below the median run.

# %%
flagged = energy.flagged_table(telemetry)
if len(flagged):
    display(report.styled(flagged))
elif telemetry.available:
    display(Markdown("No run was flagged: clocks steady, no thermal or power throttling."))
else:
    display(Markdown(f"Not checked: GPU telemetry unavailable ({telemetry.reason})."))

# %% [markdown]
# What the host did during the runs: the run thread's time on a CPU, its involuntary
# context switches and the CPU time the hypervisor gave to other guests (steal).

# %%
Markdown(host.host_sentence(metrics.host))

# %% [markdown]
# ## Failures

# %%
if len(failed_pages):
    display(Markdown(f"{report.failed_phrase(metrics.counts)}:"), report.styled(failed_pages))
else:
    display(Markdown("No failures: every record is ok."))

# %% [markdown]
# ## Configuration
#
# Save this as `run-config.yaml` to reproduce the run.

# %%
print(report.run_config_yaml(metrics))
Markdown(report.reproduce_sentence(metrics))
