"""Analytic FLOPs, parameters and bytes of DeepSeek-OCR and DeepSeek-OCR-2, stage by stage.

Both models share SAM and the decoder; between them sits CLIP ViT-L (DeepSeek-OCR) or the
Qwen2 visual encoder (DeepSeek-OCR-2). That middle stage is keyed `clip` in every cost
dict, the pipeline's name for the slot, whichever model it is. Which one applies, and which
view geometry (modes, crops), follows from the type of the dims passed in.

Conventions (the static report repeats them):
- A matmul of (m x k) by (k x n) is 2*m*k*n FLOPs (multiply and add counted apart); a
  convolution is 2 * output positions * c_out * c_in * kernel area (zero padding included,
  bias adds not counted). Only matmul-class work is counted: linear layers, convolutions,
  einsums and the two matmuls of attention. Softmax, norms, activations, RoPE, residual adds,
  interpolations and bias adds are left out, as torch's FlopCounterMode leaves them out, so
  the two can be compared op for op.
- Attention is counted as the kernel computes it: scores Q.K^T and the weighted sum P.V, each
  2 * head_dim per (query, key) pair and head. Causal attention (the decoder's prefill)
  counts the pairs the fused kernels compute, each query against the keys up to itself:
  n(n+1)/2 of them, not n^2, since flash and SDPA kernels skip fully masked tiles (their
  diagonal tiles are the O(n x tile) left out). Bidirectional attention (SAM, CLIP) and
  attention under an explicit mask count the full square.
- DeepSeek-OCR-2's encoder runs over the view's SAM tokens plus as many learned queries;
  its hybrid mask (bidirectional over SAM tokens, causal over queries) goes to SDPA as a
  mask, so the kernel computes the full square; the mask itself is not counted in bytes.
- SAM's windowed blocks pad the token grid up to a multiple of the window before attention,
  so their qkv and output projections and their attention run on the padded grid.
- Bytes are the necessary traffic, the least any implementation of these ops moves:
  weight_bytes, every weight a stage reads, read once per call (crops of one view size run
  as one batch, one call, so a stage's weights are read once per view size);
  activation_bytes, inputs read and outputs written by the counted ops (weights excluded),
  attention fused (scores never written); kv_bytes, the decoder's KV cache written and read.
  A decoder's K and V projections write straight into the cache: their outputs are
  kv_bytes, not activations. What the implementation moves beyond this (SAM's
  relative-position bias materialised and copied into SDPA's mask, norms, activations,
  residual adds, layout copies, RoPE, routing, the cache's growth by concatenation) is
  counted op by op on the real modules by `vlmprof.flops.counted_bytes` (bytes as
  implemented).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import ModuleType

from vlmprof.models.deepseek_ocr import views as ocr_views
from vlmprof.models.deepseek_ocr.dims import DeepseekOcrDims
from vlmprof.models.deepseek_ocr.views import COMPRESSION, tokens_per_side
from vlmprof.models.deepseek_ocr2 import views as ocr2_views
from vlmprof.models.deepseek_ocr2.dims import DeepseekOcr2Dims

# The dims of any model these formulas cover.
ModelDims = DeepseekOcrDims | DeepseekOcr2Dims

BYTES_PER_ELEMENT: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2}
IMAGE_CHANNELS = 3


def view_geometry(dims: ModelDims) -> ModuleType:
    """The view-geometry module (MODES, mode_spec, plan_views) of the model `dims` describe."""
    return ocr2_views if isinstance(dims, DeepseekOcr2Dims) else ocr_views


def bytes_per_element(dtype: str) -> int:
    """Bytes of one weight or activation element for a dtype name (`bfloat16`, ...)."""
    if dtype not in BYTES_PER_ELEMENT:
        raise ValueError(
            f"dtype: unknown dtype {dtype!r}; allowed: {', '.join(sorted(BYTES_PER_ELEMENT))}"
        )
    return BYTES_PER_ELEMENT[dtype]


@dataclass(frozen=True)
class StageCost:
    """FLOPs, parameters and the necessary bytes of one stage (one call, or a sum of calls).

    `attention_flops` is the part of `flops` done inside fused attention kernels (SDPA);
    counters that cannot see inside SDPA miss exactly this part.
    """

    flops: float
    params: int
    weight_bytes: float
    activation_bytes: float
    kv_bytes: float = 0.0
    attention_flops: float = 0.0

    def __add__(self, other: StageCost) -> StageCost:
        """Field-wise sum; params add too, so add costs of disjoint modules only."""
        return StageCost(
            *(
                a + b
                for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True)
            )
        )

    def scaled(self, k: float) -> StageCost:
        """k independent calls: everything but `params` multiplied by k."""
        return StageCost(
            flops=self.flops * k,
            params=self.params,
            weight_bytes=self.weight_bytes * k,
            activation_bytes=self.activation_bytes * k,
            kv_bytes=self.kv_bytes * k,
            attention_flops=self.attention_flops * k,
        )

    def batched(self, n: int) -> StageCost:
        """n inputs in one call: work and activations times n, weights read once."""
        return dataclasses.replace(self.scaled(n), weight_bytes=self.weight_bytes if n else 0.0)

    @property
    def necessary_bytes(self) -> float:
        """The least traffic any implementation of the stage moves: weights, KV cache, and
        the inputs and outputs of its matmul-class ops (what MBU divides by)."""
        return self.weight_bytes + self.kv_bytes + self.activation_bytes

    def to_dict(self) -> dict[str, float]:
        """Plain dict for JSON."""
        return dataclasses.asdict(self)


@dataclass
class _Tally:
    """Running sums of FLOPs and activation elements while walking a stage's ops."""

    flops: float = 0.0
    activation_elements: float = 0.0
    attention_flops: float = 0.0

    def linear(self, tokens: float, d_in: int, d_out: int, into_cache: bool = False) -> None:
        """A (tokens x d_in) by (d_in x d_out) matmul; `into_cache`: its output is a KV-cache
        write, counted in kv_bytes, so only its input counts here."""
        self.flops += 2 * tokens * d_in * d_out
        self.activation_elements += tokens * (d_in if into_cache else d_in + d_out)

    def conv(self, in_side: int, out_side: int, c_in: int, c_out: int, kernel: int) -> None:
        """A square convolution with a square kernel, one image."""
        self.flops += 2 * out_side**2 * c_out * c_in * kernel**2
        self.activation_elements += in_side**2 * c_in + out_side**2 * c_out

    def attention(
        self,
        batch_heads: float,
        q_len: float,
        k_len: float,
        head_dim: int,
        kv_batch_heads: float | None = None,
    ) -> None:
        """Fused bidirectional attention (SDPA): scores and weighted sum over every (query,
        key) pair; reads q, k, v and writes out.

        `kv_batch_heads` (grouped-query attention) is how many K and V heads are read.
        """
        kv = batch_heads if kv_batch_heads is None else kv_batch_heads
        flops = 2 * 2 * batch_heads * q_len * k_len * head_dim
        self.flops += flops
        self.attention_flops += flops
        self.activation_elements += head_dim * (2 * batch_heads * q_len + 2 * kv * k_len)

    def cost(self, params: int, bytes_per_el: int, weight_params: float | None = None) -> StageCost:
        """The tally as a StageCost; `weight_params` is what is read if not all `params`."""
        read = params if weight_params is None else weight_params
        return StageCost(
            flops=self.flops,
            params=params,
            weight_bytes=read * bytes_per_el,
            activation_bytes=self.activation_elements * bytes_per_el,
            attention_flops=self.attention_flops,
        )


def _check_view(dims: ModelDims, view_size: int) -> None:
    """A view must split into whole patches and survive the two stride-2 convs evenly."""
    if view_size <= 0 or view_size % (dims.sam.patch * COMPRESSION):
        raise ValueError(
            f"view size {view_size} must be a positive multiple of "
            f"{dims.sam.patch * COMPRESSION} (patch {dims.sam.patch} x compression {COMPRESSION})"
        )


def _stride2_side(side: int) -> int:
    """Output side of a 3x3, stride-2, padding-1 convolution."""
    return (side - 1) // 2 + 1


def sam_params(dims: ModelDims) -> int:
    """SAM ViT-B parameters: patch embed, position table, blocks, neck and compressor."""
    sam = dims.sam
    w = sam.width
    head_dim = w // sam.heads
    grid = sam.pretrain_size // sam.patch
    params = IMAGE_CHANNELS * sam.patch**2 * w + w  # patch-embed conv with bias
    params += grid * grid * w  # absolute position table at the pre-training size
    for block in range(sam.depth):
        side = grid if block in sam.global_blocks else sam.window
        params += 2 * (2 * side - 1) * head_dim  # rel_pos_h and rel_pos_w
        params += 2 * 2 * w  # two LayerNorms
        params += w * 3 * w + 3 * w + w * w + w  # qkv and proj, with bias
        params += w * sam.mlp_dim + sam.mlp_dim + sam.mlp_dim * w + w  # lin1, lin2
    params += w * sam.neck_channels + sam.neck_channels**2 * 9 + 2 * 2 * sam.neck_channels
    c0, c1 = sam.compressor_channels
    params += sam.neck_channels * c0 * 9 + c0 * c1 * 9
    return params


def sam_cost(dims: ModelDims, view_size: int, bytes_per_el: int) -> StageCost:
    """SAM encoder, neck and compressor over one square view of `view_size` pixels."""
    _check_view(dims, view_size)
    sam = dims.sam
    w, heads = sam.width, sam.heads
    head_dim = w // heads
    grid = view_size // sam.patch
    tally = _Tally()
    tally.conv(view_size, grid, IMAGE_CHANNELS, w, sam.patch)
    for block in range(sam.depth):
        if block in sam.global_blocks:
            side, windows = grid, 1
        else:
            side = sam.window
            windows = math.ceil(grid / side) ** 2
        tokens_attn = windows * side * side  # padded grid in windowed blocks
        batch_heads = windows * heads
        tally.linear(tokens_attn, w, 3 * w)
        # Decomposed relative positions: q . rel_h and q . rel_w, (side^2 x c) by (c x side).
        # The (tokens x tokens) bias the released code sums them into is not necessary
        # traffic (folding them into the query-key product needs none): it is counted as
        # implemented, op by op.
        for _ in range(2):
            tally.flops += 2 * batch_heads * side**2 * head_dim * side
            tally.activation_elements += batch_heads * (side**2 * head_dim + side**3)
        tally.attention(batch_heads, side * side, side * side, head_dim)
        tally.linear(tokens_attn, w, w)
        tally.linear(grid * grid, w, sam.mlp_dim)
        tally.linear(grid * grid, sam.mlp_dim, w)
    tally.conv(grid, grid, w, sam.neck_channels, 1)
    tally.conv(grid, grid, sam.neck_channels, sam.neck_channels, 3)
    c0, c1 = sam.compressor_channels
    half = _stride2_side(grid)
    quarter = _stride2_side(half)
    tally.conv(grid, half, sam.neck_channels, c0, 3)
    tally.conv(half, quarter, c0, c1, 3)
    return tally.cost(sam_params(dims), bytes_per_el)


def clip_params(dims: DeepseekOcrDims) -> int:
    """CLIP-L parameters: class token, position table, pre-LayerNorm and the layers.

    No pixel patch embedding: CLIP's patch embeddings are SAM's features.
    """
    clip = dims.clip
    w = clip.width
    params = w + (clip.pos_grid**2 + 1) * w + 2 * w
    per_layer = 4 * (w * w + w) + 2 * 2 * w + w * clip.ffn + clip.ffn + clip.ffn * w + w
    return params + clip.depth * per_layer


def clip_cost(dims: DeepseekOcrDims, view_size: int, bytes_per_el: int) -> StageCost:
    """CLIP-L over the SAM features of one view: (view/64)^2 tokens plus the class token."""
    _check_view(dims, view_size)
    clip = dims.clip
    w = clip.width
    tokens = tokens_per_side(view_size) ** 2 + 1
    tally = _Tally()
    for _ in range(clip.depth):
        for _ in range(4):  # q, k, v, out
            tally.linear(tokens, w, w)
        tally.attention(clip.heads, tokens, tokens, w // clip.heads)
        tally.linear(tokens, w, clip.ffn)
        tally.linear(tokens, clip.ffn, w)
    return tally.cost(clip_params(dims), bytes_per_el)


def encoder_params(dims: DeepseekOcr2Dims) -> int:
    """Qwen2 visual encoder parameters: layers, final norm and the two query tables.

    q, k and v projections carry a bias, the output projection none; no token embedding.
    """
    enc = dims.encoder
    w = enc.width
    kv_width = enc.kv_heads * enc.head_dim
    per_layer = (w * w + w) + 2 * (w * kv_width + kv_width) + w * w + 3 * w * enc.ffn + 2 * w
    queries = sum(tokens_per_side(size) ** 2 for size in _query_views())
    return enc.depth * per_layer + w + queries * w


def _query_views() -> tuple[int, ...]:
    """View sizes the encoder has learned queries for: the crop and the global view."""
    spec = ocr2_views.mode_spec("gundam")
    return (spec.image_size, spec.base_size)


def encoder_cost(dims: DeepseekOcr2Dims, view_size: int, bytes_per_el: int) -> StageCost:
    """Qwen2 visual encoder over one view: n = (view/64)^2 SAM tokens followed by n queries.

    Every layer runs on all 2n positions and attention covers the full 2n x 2n square; only
    the n query outputs are kept (and projected).
    """
    _check_view(dims, view_size)
    enc = dims.encoder
    w, head_dim = enc.width, enc.head_dim
    tokens = 2 * tokens_per_side(view_size) ** 2
    tally = _Tally()
    for _ in range(enc.depth):
        tally.linear(tokens, w, w)  # q
        tally.linear(tokens, w, 2 * enc.kv_heads * head_dim)  # k and v
        tally.attention(enc.heads, tokens, tokens, head_dim, kv_batch_heads=enc.kv_heads)
        tally.linear(tokens, w, w)  # output
        tally.linear(tokens, w, 2 * enc.ffn)  # gate and up
        tally.linear(tokens, enc.ffn, w)  # down
    return tally.cost(encoder_params(dims), bytes_per_el)


def projector_params(dims: ModelDims) -> int:
    """The linear projector (with bias); the newline and separator vectors are apart."""
    return dims.projector_in * dims.projector_out + dims.projector_out


def projector_cost(dims: ModelDims, n_tokens: int, bytes_per_el: int) -> StageCost:
    """Projector over `n_tokens` positions (newline and separator are not projected)."""
    tally = _Tally()
    tally.linear(n_tokens, dims.projector_in, dims.projector_out)
    return tally.cost(projector_params(dims), bytes_per_el)


def view_cost(dims: ModelDims, view_size: int, bytes_per_el: int) -> dict[str, StageCost]:
    """SAM, CLIP (or OCR-2's encoder) and projector of one view, keyed sam, clip, projector.

    Both models project (view/64)^2 tokens per view: CLIP's grid positions, or the encoder's
    query outputs.
    """
    middle = encoder_cost if isinstance(dims, DeepseekOcr2Dims) else clip_cost
    return {
        "sam": sam_cost(dims, view_size, bytes_per_el),
        "clip": middle(dims, view_size, bytes_per_el),
        "projector": projector_cost(dims, tokens_per_side(view_size) ** 2, bytes_per_el),
    }


def vision_cost(
    dims: ModelDims, mode: str, n_crops: int, bytes_per_el: int
) -> dict[str, StageCost]:
    """Vision of one image: the global view plus `n_crops` crops, keyed sam/clip/projector/vision.

    Crops run as one batch, so each stage reads its weights once per view size.
    """
    spec = view_geometry(dims).mode_spec(mode)
    if n_crops < 0 or (n_crops and not spec.crop):
        raise ValueError(f"n_crops: mode {mode!r} takes no crops, got {n_crops}")
    if n_crops == 1:
        raise ValueError("n_crops: one crop is not a tiling; use 0 (global view only) or >= 2")
    parts = view_cost(dims, spec.base_size, bytes_per_el)
    if n_crops:
        crops = view_cost(dims, spec.image_size, bytes_per_el)
        parts = {
            name: dataclasses.replace(cost + crops[name].batched(n_crops), params=cost.params)
            for name, cost in parts.items()
        }
    parts["vision"] = parts["sam"] + parts["clip"] + parts["projector"]
    return parts


def expected_distinct_experts(routed_experts: int, experts_per_token: int, tokens: int) -> float:
    """Expected number of experts hit by `tokens` tokens, each picking top-k of E at random.

    E * (1 - (1 - k/E)^tokens) under uniform routing: reaches E (within half an expert) once
    tokens*k exceeds a few times E, so a prefill of a page touches every expert.
    """
    miss = 1.0 - experts_per_token / routed_experts
    return routed_experts * (1.0 - miss**tokens)


def _decoder_layer_params(dims: ModelDims) -> dict[str, int]:
    """Per-layer parameter groups of the decoder."""
    dec = dims.decoder
    h = dec.hidden
    return {
        "attention": h * dec.heads * dec.head_dim * 2 + h * dec.kv_heads * dec.head_dim * 2,
        "norms": 2 * h,
        "dense_mlp": 3 * h * dec.dense_intermediate,
        "expert": 3 * h * dec.moe_intermediate,
        "shared": 3 * h * dec.moe_intermediate * dec.shared_experts,
        "router": dec.routed_experts * h,
    }


def decoder_active_params(dims: ModelDims, experts_per_layer: float) -> float:
    """Decoder weights one forward reads when each MoE layer uses `experts_per_layer` experts.

    Embedding: one row (a position reads only its own row); lm_head in full.
    """
    dec = dims.decoder
    layer = _decoder_layer_params(dims)
    moe_layers = dec.layers - dec.first_k_dense
    total = dec.vocab * dec.hidden + dec.hidden + dec.hidden  # lm_head, final norm, one row
    total += dec.layers * (layer["attention"] + layer["norms"])
    total += dec.first_k_dense * layer["dense_mlp"]
    total += moe_layers * (experts_per_layer * layer["expert"] + layer["shared"] + layer["router"])
    return total


def experts_hit(dims: ModelDims, batch: int) -> float:
    """Expected distinct routed experts per MoE layer when each of `batch` tokens picks its
    top-k of E at random (random weights route close to uniformly): E (1 - (1 - k/E)^B).
    An assumption, not a measurement: trained routers favour some experts."""
    dec = dims.decoder
    if dec.routed_experts == 0:
        return 0.0
    pick = dec.experts_per_token / dec.routed_experts
    return dec.routed_experts * (1.0 - (1.0 - pick) ** batch)


def decode_weight_share(dims: ModelDims, batch: int) -> float:
    """A page's share of a decode step's weight reads in a batch of `batch` pages, against
    its lone step's: the weights the batch's step reads (`experts_hit` experts per layer)
    over its pages, divided by one page's active weights (1 at batch 1)."""
    lone = decoder_active_params(dims, dims.decoder.experts_per_token)
    return decoder_active_params(dims, experts_hit(dims, batch)) / batch / lone


def decoder_params(dims: ModelDims) -> int:
    """All decoder parameters: embedding, layers, final norm and the untied lm_head."""
    dec = dims.decoder
    every_expert = decoder_active_params(dims, dec.routed_experts)
    return int(every_expert + (dec.vocab - 1) * dec.hidden)  # the rest of the embedding


def causal_pairs(q_len: int, kv_len: int) -> int:
    """(query, key) pairs of causal attention for the last q_len of kv_len positions, each
    query against the keys up to itself: q_len(q_len+1)/2 in a prefill (q_len == kv_len),
    kv_len for one decode token."""
    if not 1 <= q_len <= kv_len:
        raise ValueError(f"causal attention needs 1 <= q_len <= kv_len, got {q_len}, {kv_len}")
    return q_len * (kv_len - q_len) + q_len * (q_len + 1) // 2


def _decoder_tally(dims: ModelDims, q_len: int, kv_len: int) -> _Tally:
    """Decoder layers over q_len new tokens, the last of kv_len positions, attending causally;
    lm_head on the last."""
    dec = dims.decoder
    h = dec.hidden
    q_width = dec.heads * dec.head_dim
    kv_width = dec.kv_heads * dec.head_dim
    tally = _Tally()
    for layer in range(dec.layers):
        tally.linear(q_len, h, q_width)
        tally.linear(q_len, h, kv_width, into_cache=True)
        tally.linear(q_len, h, kv_width, into_cache=True)
        # K and V reads of the cache are kv_bytes, so only q and the output count here.
        flops = 2 * 2 * dec.heads * causal_pairs(q_len, kv_len) * dec.head_dim
        tally.flops += flops
        tally.attention_flops += flops
        tally.activation_elements += 2 * dec.heads * q_len * dec.head_dim
        tally.linear(q_len, q_width, h)
        if layer < dec.first_k_dense:
            mlp = [(q_len, dec.dense_intermediate)]
        else:
            tally.linear(q_len, h, dec.routed_experts)  # router
            routed = q_len * dec.experts_per_token
            mlp = [
                (routed, dec.moe_intermediate),
                (q_len, dec.moe_intermediate * dec.shared_experts),
            ]
        for tokens, inter in mlp:
            tally.linear(tokens, h, 2 * inter)  # gate and up
            tally.linear(tokens, inter, h)  # down
    tally.linear(1, h, dec.vocab)  # lm_head on the last position only
    return tally


def kv_bytes_per_token_per_layer(dims: ModelDims, bytes_per_el: int) -> int:
    """Bytes of one position's K and V in one decoder layer's cache."""
    dec = dims.decoder
    return 2 * dec.kv_heads * dec.head_dim * bytes_per_el


def _kv_entry_bytes(dims: ModelDims, bytes_per_el: int) -> float:
    """Bytes of one position's K and V over all layers."""
    return dims.decoder.layers * kv_bytes_per_token_per_layer(dims, bytes_per_el)


def llm_prefill_cost(
    dims: ModelDims,
    prefill_len: int,
    bytes_per_el: int,
) -> StageCost:
    """Decoder over the whole prompt of `prefill_len` tokens (vision excluded).

    Attention is causal: L(L+1)/2 (query, key) pairs, as the fused kernels compute it. The
    lm_head runs on the last position only, since prefill returns the last logits.
    Weights: every weight the prefill reads, with the expected number of distinct experts
    per MoE layer; kv_bytes: the cache written for all positions and read back once.
    """
    if prefill_len < 1:
        raise ValueError(f"prefill_len: must be at least 1, got {prefill_len}")
    dec = dims.decoder
    tally = _decoder_tally(dims, prefill_len, prefill_len)
    experts = expected_distinct_experts(dec.routed_experts, dec.experts_per_token, prefill_len)
    weights = decoder_active_params(dims, experts) + (prefill_len - 1) * dec.hidden
    cost = tally.cost(decoder_params(dims), bytes_per_el, weight_params=weights)
    # Each position's K and V are written to the cache once (the K and V projections'
    # outputs) and read back by attention once.
    kv = 2 * prefill_len * _kv_entry_bytes(dims, bytes_per_el)
    return dataclasses.replace(cost, kv_bytes=kv)


def decode_step_cost(dims: ModelDims, context_len: int, bytes_per_el: int) -> StageCost:
    """One decode step: one token attending over `context_len` positions (itself included).

    Reads every active weight once (attention, dense and shared MLPs, exactly top-k experts
    per MoE layer, routers, norms, the full lm_head, one embedding row); kv_bytes is the
    cache read for `context_len` positions plus the write of the new entry (the K and V
    projections' outputs).
    """
    if context_len < 1:
        raise ValueError(f"context_len: must be at least 1, got {context_len}")
    dec = dims.decoder
    tally = _decoder_tally(dims, 1, context_len)
    weights = decoder_active_params(dims, dec.experts_per_token)
    cost = tally.cost(decoder_params(dims), bytes_per_el, weight_params=weights)
    kv = (context_len + 1) * _kv_entry_bytes(dims, bytes_per_el)
    return dataclasses.replace(cost, kv_bytes=kv)


def decode_total_cost(
    dims: ModelDims, prefill_len: int, tokens: int, bytes_per_el: int
) -> StageCost:
    """All decode steps of a generation of `tokens` tokens after a prefill of `prefill_len`.

    `tokens` counts every generated token, the first of which comes from the prefill's
    logits; so there are tokens - 1 decode steps, and step j = 1 .. tokens-1 feeds the token
    generated before it and attends over prefill_len + j positions.
    """
    if tokens < 0:
        raise ValueError(f"tokens: must be non-negative, got {tokens}")
    params = decoder_params(dims)
    total = StageCost(flops=0.0, params=params, weight_bytes=0.0, activation_bytes=0.0)
    for step in range(1, tokens):
        step_cost = decode_step_cost(dims, prefill_len + step, bytes_per_el)
        total = dataclasses.replace(total + step_cost, params=params)
    return total


def param_counts(dims: ModelDims) -> dict[str, int]:
    """Parameter counts by part.

    `clip` (DeepSeek-OCR) or `encoder` (DeepSeek-OCR-2, its query tables included) is the
    middle vision part; `projector` is the linear layer; `separators` the learned
    image_newline and view_seperator vectors (DeepSeek-OCR-2 has the separator only);
    `decoder_total` = embedding + layers + final norm + lm_head;
    `decoder_active_per_token` = what one token's forward reads (attention, dense layer,
    shared experts, top-k routed experts, routers, norms, lm_head, one embedding row).
    """
    ocr2 = isinstance(dims, DeepseekOcr2Dims)
    middle = ("encoder", encoder_params(dims)) if ocr2 else ("clip", clip_params(dims))
    counts: dict[str, int] = {
        "sam": sam_params(dims),
        middle[0]: middle[1],
        "projector": projector_params(dims),
        "separators": (1 if ocr2 else 2) * dims.projector_out,
        "decoder_total": decoder_params(dims),
        "decoder_active_per_token": int(
            decoder_active_params(dims, dims.decoder.experts_per_token)
        ),
    }
    counts["total"] = sum(
        counts[k] for k in ("sam", middle[0], "projector", "separators", "decoder_total")
    )
    return counts
