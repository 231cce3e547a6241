"""The model adapter interface the whole pipeline profiles through.

An adapter builds a model (random init from a preset, seeded), turns one image into model
inputs, names the modules whose forward passes are stages, runs the prefill (first forward
to first logits) and one greedy decode step with a KV cache. Adding a model is one subpackage
that implements this class and registers itself in `vlmprof.models`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vlmprof.models.prompt_tokenizer import stand_in_token_count

if TYPE_CHECKING:  # the workflow imports ModelSpec to plan jobs, without torch
    import torch
    from PIL import Image


@dataclass(frozen=True)
class ModelSpec:
    """Everything that decides which model is built and the code path it runs; how a run
    uses it (batch size, workers, where pages are preprocessed) is the run's settings
    (`runtime.profile_settings.ProfileSettings`)."""

    name: str = "deepseek_ocr"
    # Which transformers architecture the `hf_vlm` adapter builds (models/hf_vlm/
    # architectures.py); every other adapter ignores it.
    architecture: str = "qwen2_5_vl"
    preset: str = "small"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    experts_implementation: str = "eager"
    mode: str = "gundam"
    max_crops: int = 6
    seed: int = 0
    # A local checkpoint directory; None builds random weights from `preset`.
    checkpoint: str | None = None
    # Run the model code shipped in `checkpoint` (its auto_map) instead of our module tree.
    trust_remote_code: bool = False
    # Decode path: eager (growing KV cache, the released code), static (preallocated KV
    # cache) or cuda_graph (static cache, each decode step one replayed CUDA graph).
    decode: str = "eager"
    # Parts run through torch.compile: none, vision, decoder or all.
    compile: str = "none"
    # The MoE routers (router linear, softmax, top-k, scaling): eager (released, one kernel
    # per op) or fused (each router's forward through torch.compile, so the ops around the
    # linear run as fused kernels).
    routing: str = "eager"
    # SAM's relative-position term: bias (released: a tokens x tokens bias per head) or
    # folded into the query-key product (no bias tensor; models/sam_attention.py).
    sam_attention: str = "bias"
    # Vision encoders: eager (released) or cuda_graph (each stage's forward replayed from
    # one CUDA graph per input shape; models/shape_graphs.py).
    vision: str = "eager"
    # Test-only: noise (in units of the weight's std) added to the output head, to show
    # that the correctness gate catches a wrong model. 0 leaves the model as built.
    perturb: float = 0.0
    # The correctness gate's higher-precision runs (float32, float64): the weights made or
    # loaded in `dtype`, then cast to this before any switch applies, so the same weights
    # are computed more exactly. None runs in `dtype`.
    upcast: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], device: str) -> ModelSpec:
        """The baseline model of a validated run config (defaults filled), on `device` as
        judged where the jobs are planned: preset `auto` is full on CUDA and small on CPU,
        and the decode path is the released one."""
        model = config["model"]
        preset = model["preset"]
        if preset == "auto":
            preset = "full" if device.startswith("cuda") else "small"
        return cls(
            name=model["name"],
            architecture=model["architecture"],
            preset=preset,
            overrides=model["overrides"],
            device=device,
            dtype=config["dtype"],
            attn_implementation=model["attn_implementation"],
            experts_implementation=model["experts_implementation"],
            mode=config["mode"],
            max_crops=config["max_crops"],
            seed=model["seed"],
            checkpoint=model["checkpoint"],
            trust_remote_code=model["trust_remote_code"],
            decode="eager",
            compile="none",
            perturb=0.0,
        )


def released_values(names: tuple[str, ...]) -> dict[str, Any]:
    """The named ModelSpec fields at their defaults, which are the released code path."""
    values = {item.name: item.default for item in fields(ModelSpec) if item.name in names}
    if len(values) != len(names):
        raise ValueError(f"not ModelSpec fields: {sorted(set(names) - set(values))}")
    return values


# Fields added after runs were planned, at the value that keeps the released code path. A
# job's params leave them out at that value, so upgrading does not redo finished jobs
# (Snakemake reruns a job whose params text changes).
LATER_FIELDS: dict[str, Any] = released_values(
    (
        "sam_attention",
        "vision",
        "architecture",
        "routing",
        "upcast",
    )
)
# Switches that change how our module tree runs, at the released code's values: a
# checkpoint's own model code (trust_remote_code) takes none of them.
MODULE_TREE_SWITCHES: dict[str, Any] = released_values(
    ("decode", "compile", "routing", "sam_attention", "vision", "perturb")
)


# Models whose own module tree pads several pages into one batch (`batch_size` above 1);
# read without torch by the workflow's planning, and by the adapters.
BATCHING_MODELS = frozenset({"deepseek_ocr"})


def batches_pages(name: str, trust_remote_code: bool) -> bool:
    """Whether model `name` generates several pages together: its own module tree does, a
    checkpoint's own code (trust_remote_code) takes one page at a time."""
    return name in BATCHING_MODELS and not trust_remote_code


def spec_params(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A model spec (as a dict) for a job's params: later fields at their released value
    left out, since `ModelSpec(**params)` fills them back in."""
    return {key: value for key, value in spec.items() if LATER_FIELDS.get(key, ...) != value}


DimsT = TypeVar("DimsT")
ModuleT = TypeVar("ModuleT", bound="torch.nn.Module")


@dataclass(frozen=True)
class ModelParts(Generic[DimsT, ModuleT]):
    """What a checkpoint reader returns: dimensions, module tree and prompt tokenizer.

    Readers stop here; the registry's adapter class builds the adapter from the parts.
    """

    dims: DimsT
    module: ModuleT
    tokenizer: Any


@dataclass
class ModelInputs:
    """One image turned into model inputs, plus the facts a run record keeps."""

    input_ids: torch.Tensor
    pixel_views: dict[str, torch.Tensor]
    mode: str
    n_crops: int
    image_tokens: int
    tiles: tuple[int, int] = (1, 1)

    @property
    def prefill_len(self) -> int:
        """Tokens in the prefill sequence (text and image tokens)."""
        return int(self.input_ids.shape[-1])

    def to(
        self, device: torch.device | str, dtype: torch.dtype, non_blocking: bool = False
    ) -> ModelInputs:
        """Copy to a device; floating-point pixel tensors also take the model's dtype (integer
        ones, such as an image's patch grid or token types, stay integers). With
        `non_blocking` (from pinned memory) the copy is only queued on the current stream,
        and the cast runs on the device after it: cast first, the host would make a pageable
        copy and the transfer would wait for it."""

        def moved(tensor: torch.Tensor) -> torch.Tensor:
            if non_blocking:
                tensor = tensor.to(device, non_blocking=True)
            if tensor.is_floating_point():
                return tensor.to(device=device, dtype=dtype)
            return tensor.to(device)

        return self._with(moved)

    def pin_memory(self) -> ModelInputs:
        """A copy in page-locked host memory, which the device copies from without the
        host's help (torch's DataLoader calls this on each page it pins)."""
        return self._with(lambda tensor: tensor.pin_memory())

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor of the inputs: the prompt's ids and each view's pixels."""
        return [self.input_ids, *self.pixel_views.values()]

    def _with(self, change: Callable[[torch.Tensor], torch.Tensor]) -> ModelInputs:
        """The same inputs with `change` applied to each tensor."""
        return ModelInputs(
            input_ids=change(self.input_ids),
            pixel_views={k: change(v) for k, v in self.pixel_views.items()},
            mode=self.mode,
            n_crops=self.n_crops,
            image_tokens=self.image_tokens,
            tiles=self.tiles,
        )


@dataclass
class DecodeState:
    """What the decode loop carries between steps."""

    cache: Any
    position: int
    # Padding columns per page of a left-padded batch (B,), on the device; None for one page.
    pads: torch.Tensor | None = None


class ModelAdapter(ABC):
    """A model the pipeline can build, feed, split into stages and run."""

    name: str
    spec: ModelSpec
    module: torch.nn.Module
    # Token that ends generation unless `ignore_eos`; None where the model has none.
    eos_token_id: int | None = None

    @property
    def pads_batches(self) -> bool:
        """Whether `prefill_batch` takes several pages (left-padded into one batch)."""
        return batches_pages(self.name, self.spec.trust_remote_code)

    @classmethod
    @abstractmethod
    def build(cls, spec: ModelSpec) -> ModelAdapter:
        """Build the model on `spec.device` in `spec.dtype`, weights seeded by `spec.seed`."""

    @property
    def device(self) -> torch.device:
        """Device the model's weights live on."""
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point dtype of the model's weights."""
        return next(self.module.parameters()).dtype

    @contextmanager
    def released_decode(self) -> Iterator[None]:
        """Run the block on the released decode path (this adapter has no other)."""
        yield

    @property
    def text_tokenizer(self) -> str:
        """Which tokenizer `count_text_tokens` uses: the model's own, or a stand-in."""
        return "stand-in"

    def count_text_tokens(self, text: str) -> int:
        """Tokens the model's tokenizer makes of `text` (a page's ground truth, no special
        tokens); a model without a real tokenizer counts the stand-in's pieces."""
        return stand_in_token_count(text)

    @abstractmethod
    def preprocess(self, image: Image.Image) -> ModelInputs:
        """Turn one RGB page into CPU tensors ready for `prefill`."""

    def preprocess_on_device(self, image: Image.Image) -> ModelInputs:
        """`preprocess` with the pixels made on the model's device (`preprocess: gpu`);
        only a model with device-side views has it."""
        raise ValueError(
            f"preprocess: gpu is built for deepseek_ocr's views, not model {self.name}; drop"
            " the switch"
        )

    @abstractmethod
    def stage_modules(self) -> dict[str, str]:
        """Map module path (as in `named_modules`) to stage label (`sam`, `clip`, ...)."""

    @abstractmethod
    def prefill(self, inputs: ModelInputs, new_tokens: int) -> tuple[torch.Tensor, DecodeState]:
        """First forward pass from on-device inputs to the last position's logits, into a KV
        cache with room for the `new_tokens` the generation may add after the prompt."""

    def prefill_batch(
        self, batch: Sequence[ModelInputs], new_tokens: int
    ) -> tuple[torch.Tensor, DecodeState]:
        """Prefill several pages together: logits (B, vocab) and one state for all of them,
        its cache with room for `new_tokens` more per page. Adapters that cannot batch pages
        take one page only."""
        if len(batch) != 1:
            raise NotImplementedError(
                f"{self.name} prefills one page at a time; set batch_size: 1 for this model"
            )
        return self.prefill(batch[0], new_tokens)

    @abstractmethod
    def decode_step(self, token: torch.Tensor, state: DecodeState) -> torch.Tensor:
        """One greedy step: feed `token` (shape (B, 1)), return next logits, advance state."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Dimensions and settings for provenance and static analysis."""
