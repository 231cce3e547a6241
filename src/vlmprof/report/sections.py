"""The report's sections in one import, for the notebooks: each name delegates to the module
of its section. Tables are DataFrames with units in their column names; figures are drawn
from them by `vlmprof.report.figures`.

Run and formatting
    load_run(run_dir)                   RunOutputs: metrics.json, tables, records, operators
    read_comparison(run_dir)            variants/comparison.json, or None
    arm_records(run_dir, comparison)    each arm's run records, the baseline first
    styled(table)                       a table for display: numbers via format_number
    format_number(value)                the one number format (2 decimals, 3 significant)
    bullets(sentences, literal)         sentences as a Markdown list
    percent(fraction)                   "36.5%"
Environment, provenance and quality
    provenance_notes(metrics)           warnings before any number (CPU timings, fallback)
    environment_table(metrics)          device, versions, commit and config hash
    shards_table(metrics)               device, GPU index, UUID, name and clocks per shard
    benchmark_table(benchmarks)         wall time (s) and peak RSS (MB) of each job
    repeatability_table(metrics)        spread of repeats per stage (%) against tolerance
    failed_pages_table(metrics, subset) each failed page: path, failed repeats, reason
    unprofiled_pages(failed, per_image) failed pages without an ok record, with the reason
    run_config_yaml(metrics)            the run's configuration as a config file
Inputs
    input_table(metrics, subset)        pages: category, size (px), crops, tokens
    thumbnail_grid(...)                 the pages as a figure (failed pages as boxes)
Throughput
    rates_table(metrics)                output tokens/s and pages/s end to end, GPU side and
                                        decode only, each with what it counts
    shard_walls_table(metrics)          each shard's wall time end to end, and with the
                                        measurement's own work
Timing
    timed(metrics)                      whether any ok record timed the stages
    stage_timing_table(stage_ms)        mean, std, CV, p50, p90 (ms) and nesting per stage
    run_split(metrics)                  load, preprocess, prefill, decode: mean, share (%)
    prefill_split(metrics)              prefill's exclusive parts: mean (ms), share (%)
    page_split(metrics)                 a page's exclusive parts: mean (ms), share (%)
    end_to_end_split(metrics)           the host's load and preprocess, then those parts
    batch_timeline(records)             one batch's load, preprocess, wait and GPU spans
    binding_sentence(pipeline)          which side binds the run, host or GPU, and why
    decode_slots_table(metrics)         static batching's cost: decode slot-steps, the idle
                                        ones (pages ended), tokens/s useful and over all
    per_image_parts(per_image)          per page, each exclusive part (ms)
    category_table(per_category)        per category: pages, stage means (ms) and CV (%)
    decode_latency_table(metrics)       TTFT and TPOT: mean, p50, p90, p99 (ms)
    decode_steps(records)               every decode step's time (ms)
    ttft_values(records)                every ok record's TTFT (ms)
Utilisation
    peaks_table(metrics)                the datasheet and calibrated peaks and their source
    missing_peak_reasons(metrics)       why a peak is absent
    utilisation_table(mfu, mbu)         MFU and MBU (%) per stage, achieved rates, bytes
                                        necessary and as implemented
    decode_roofline_table(metrics)      bytes per decode step (both), step time at each
                                        bandwidth
    roofline_points(metrics)            each stage's bytes (both), intensity, rate and roof
Operators
    timeline_table(metrics)             busy (%), launches, idle gaps per stage
    quoted_busy(timeline_stage)         the busy fraction quoted, and how it was obtained
    top_operators(operators, n)         the n heaviest operators by self time (ms)
    operator_categories(operators)      self time (ms) per category, by stage
Cost
    cost_table(cost)                    a page at its real length: device ms end to end and
                                        GPU side, host ms, latency p50/p90, pages per
                                        GPU-day (CPU-day), tokens/s, cost per 1,000 pages
    cost_sentence(cost)                 the same in words; published_table(cost): the
                                        published throughput beside it
Static compute
    params_table(metrics)               parameters (M) per part of the model
    static_crosscheck(static)           FLOPs counted three ways (GFLOP), agreement;
                                        counted_work_note(static): why a model has none
Models
    read_model_comparison(run_dir)      models/comparison.json, or None (NO_MODELS says how)
    models_table(comparison)            per model and path (released, best): its gate,
                                        tokens, ms by stage, tokens/s, MFU/MBU, cost
    cheapest_sentence(comparison)       the model and path with the least GPU time per page
                                        (a best path only where its gate passed)
    page_parts(comparison)              per model and path, a page's GPU time (s) by part
Variants
    comparison_note(comparison)         the line shown when there is nothing to compare
    gate_table(comparison)              each variant's gate and measured margin
    gate_meaning(gated(comparison))     what "passed" means, with the closest call
    comparison_table(comparison)        stage x variant: time, ratio, MFU/MBU, roofline x
    bound_table(comparison)             per stage, its fastest variant's distance to its bound
    settings_table(comparison)          per setting, rates (end to end first), a page's p90
                                        latency, pages per GPU-day, cost; workers, end to
                                        end / GPU side, the binding side, KV cache and peak
                                        memory, pages that did not fit;
                                        slo_sentence: the cheapest within cost.latency_slo_ms
    binding_sentences(comparison)       per setting, which side binds it (or it did not fit)
    timeline_titles(comparison)         per setting, its batch timeline's panel title
    chart_frame(comparison)             the rows the variant figure draws
Findings (data) and their sentences
    cost_centres(metrics, operators)    the largest cost centres of a page
    cost_centre_table(centres)          them as a table; cost_centre_sentences: in words
    utilisation_findings(metrics)       prefill's MFU, decode's MBU, busy; in words:
                                        utilisation_sentences(findings)
    recommendations(metrics, ops, cc)   the rules that fire; recommendation_sentences
    category_gap(per_category, tol)     widest gap between categories; category_sentence
    variant_findings(comparison)        what each optimisation buys; variant_sentences;
                                        furthest_sentence: the stage furthest from its bound
    throughput(metrics)                 the run's rates; throughput_sentence: in words
    headline(metrics)                   output tokens/s end to end, then time per page
    failed_phrase(counts)               "5 of 16 pages failed (10 of 32 records)"
    reliability_sentence(metrics)       repeats within tolerance, failures
    reproduce_sentence(metrics)         the command and config hash to rerun the run
"""

from vlmprof.report.cost import cost_sentence, cost_table, published_table
from vlmprof.report.findings import (
    category_gap,
    cost_centres,
    gated,
    recommendations,
    throughput,
    utilisation_findings,
    variant_findings,
)
from vlmprof.report.formatting import bullets, format_number, percent, styled
from vlmprof.report.inputs import input_table, thumbnail_grid
from vlmprof.report.models import (
    NO_MODELS,
    cheapest_sentence,
    models_table,
    page_parts,
    read_model_comparison,
)
from vlmprof.report.operators import (
    NO_OPERATOR_PASS,
    operator_categories,
    timeline_table,
    top_operators,
)
from vlmprof.report.quality import (
    benchmark_table,
    environment_table,
    failed_pages_table,
    provenance_notes,
    repeatability_table,
    run_config_yaml,
    shards_table,
    unprofiled_pages,
)
from vlmprof.report.run import arm_records, load_run, read_comparison
from vlmprof.report.sentences import (
    category_sentence,
    cost_centre_sentences,
    cost_centre_table,
    failed_phrase,
    furthest_sentence,
    headline,
    recommendation_sentences,
    reliability_sentence,
    reproduce_sentence,
    throughput_sentence,
    utilisation_sentences,
    variant_sentences,
)
from vlmprof.report.static_compute import counted_work_note, params_table, static_crosscheck
from vlmprof.report.throughput import rates_table, shard_walls_table
from vlmprof.report.timed_busy import quoted_busy
from vlmprof.report.timing import (
    NOTHING_TIMED,
    batch_timeline,
    binding_sentence,
    category_table,
    decode_latency_table,
    decode_slots_table,
    decode_steps,
    end_to_end_split,
    page_split,
    per_image_parts,
    prefill_split,
    run_split,
    stage_timing_table,
    timed,
    ttft_values,
)
from vlmprof.report.utilisation import (
    decode_roofline_table,
    missing_peak_reasons,
    peaks_table,
    roofline_points,
    utilisation_table,
)
from vlmprof.report.variants import (
    binding_sentences,
    bound_table,
    chart_frame,
    comparison_note,
    comparison_table,
    gate_meaning,
    gate_table,
    settings_table,
    slo_sentence,
    timeline_titles,
)

__all__ = [
    "NOTHING_TIMED",
    "NO_MODELS",
    "NO_OPERATOR_PASS",
    "batch_timeline",
    "binding_sentence",
    "binding_sentences",
    "arm_records",
    "timeline_titles",
    "benchmark_table",
    "bound_table",
    "bullets",
    "category_gap",
    "category_sentence",
    "category_table",
    "chart_frame",
    "cheapest_sentence",
    "comparison_note",
    "comparison_table",
    "cost_centre_sentences",
    "counted_work_note",
    "cost_sentence",
    "cost_table",
    "cost_centre_table",
    "cost_centres",
    "decode_latency_table",
    "decode_roofline_table",
    "decode_slots_table",
    "decode_steps",
    "end_to_end_split",
    "environment_table",
    "failed_pages_table",
    "failed_phrase",
    "format_number",
    "furthest_sentence",
    "gate_meaning",
    "gate_table",
    "gated",
    "headline",
    "input_table",
    "load_run",
    "missing_peak_reasons",
    "models_table",
    "operator_categories",
    "page_parts",
    "page_split",
    "params_table",
    "peaks_table",
    "per_image_parts",
    "percent",
    "prefill_split",
    "provenance_notes",
    "published_table",
    "rates_table",
    "read_comparison",
    "read_model_comparison",
    "recommendation_sentences",
    "recommendations",
    "reliability_sentence",
    "repeatability_table",
    "reproduce_sentence",
    "roofline_points",
    "run_config_yaml",
    "run_split",
    "settings_table",
    "shard_walls_table",
    "shards_table",
    "slo_sentence",
    "stage_timing_table",
    "static_crosscheck",
    "styled",
    "thumbnail_grid",
    "throughput",
    "throughput_sentence",
    "timed",
    "timeline_table",
    "quoted_busy",
    "top_operators",
    "ttft_values",
    "unprofiled_pages",
    "utilisation_findings",
    "utilisation_sentences",
    "utilisation_table",
    "variant_findings",
    "variant_sentences",
]
