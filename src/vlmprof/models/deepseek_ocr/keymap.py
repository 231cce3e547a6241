"""Tensor names of the released DeepSeek-OCR checkpoint mapped to our module tree, both ways.

The released checkpoint (`deepseek-ai/DeepSeek-OCR`, one safetensors file, 2,710 tensors)
names SAM segment-anything style (`blocks.N.norm1`, `patch_embed.proj`, `neck.0`-`neck.3`,
`net_2`, `net_3`), fuses each CLIP layer's q/k/v into one `qkv_proj` (rows q, then k, then
v), keeps the projector's linear layer under `projector.layers`, and stores every routed
expert as its own `experts.E.{gate,up,down}_proj.weight`. Our tree (transformers'
`deepseek_ocr2` SAM and decoder classes, CLIP encoder layers) names SAM
`layers.N.layer_norm1`, `patch_embed.projection`, `neck.conv1`..., `proj.conv1/conv2`,
splits CLIP's q/k/v, and stacks each layer's experts into 3-D `experts.gate_up_proj`
(E, 2 * I, H; gate rows first, as the eager expert loop splits them) and
`experts.down_proj` (E, H, I). Every other name is the same on both sides.

`from_released` leaves names that are already ours untouched, so it can normalise any
checkpoint; tensors it cannot map keep their names and surface as unexpected keys.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping

import torch

# (released prefix, our prefix); `#` stands for a block number. First match wins, so the
# specific SAM norm names come before the generic block prefix.
RENAMED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.sam_model.blocks.#.norm1.", "model.sam_model.layers.#.layer_norm1."),
    ("model.sam_model.blocks.#.norm2.", "model.sam_model.layers.#.layer_norm2."),
    ("model.sam_model.blocks.#.", "model.sam_model.layers.#."),
    ("model.sam_model.patch_embed.proj.", "model.sam_model.patch_embed.projection."),
    ("model.sam_model.neck.0.", "model.sam_model.neck.conv1."),
    ("model.sam_model.neck.1.", "model.sam_model.neck.layer_norm1."),
    ("model.sam_model.neck.2.", "model.sam_model.neck.conv2."),
    ("model.sam_model.neck.3.", "model.sam_model.neck.layer_norm2."),
    ("model.sam_model.net_2.", "model.sam_model.proj.conv1."),
    ("model.sam_model.net_3.", "model.sam_model.proj.conv2."),
    ("model.projector.layers.", "model.projector."),
)
# Released tensors DeepSeek-OCR never uses: CLIP's pixel patch embedding (SAM features
# replace it) and its position-id buffer (an arange).
UNUSED_RELEASED = frozenset(
    {
        "model.vision_model.embeddings.patch_embedding.weight",
        "model.vision_model.embeddings.position_ids",
    }
)
EXPERT_PARTS = ("gate", "up", "down")

_RELEASED_EXPERT = re.compile(
    r"(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight"
)
_RELEASED_QKV = re.compile(
    r"(model\.vision_model\.transformer\.layers\.\d+\.self_attn)\.qkv_proj\.(weight|bias)"
)
_OUR_EXPERTS = re.compile(r"(model\.layers\.\d+\.mlp\.experts)\.(gate_up_proj|down_proj)")
_OUR_QKV = re.compile(
    r"(model\.vision_model\.transformer\.layers\.\d+\.self_attn)\.([qkv])_proj\.(weight|bias)"
)


def _prefix_pattern(prefix: str) -> re.Pattern[str]:
    """A regex matching `prefix` at the start of a name, capturing the block number."""
    return re.compile(re.escape(prefix).replace(re.escape("#"), r"(\d+)"))


_TO_OURS = tuple((_prefix_pattern(theirs), ours) for theirs, ours in RENAMED_PREFIXES)
_TO_RELEASED = tuple((_prefix_pattern(ours), theirs) for theirs, ours in RENAMED_PREFIXES)


def _rename(name: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    """`name` with its first matching prefix replaced (block number carried over)."""
    for pattern, target in table:
        match = pattern.match(name)
        if match:
            number = match.group(1) if pattern.groups else ""
            return target.replace("#", number) + name[match.end() :]
    return name


def our_name(released: str) -> str:
    """Our name of a released tensor that maps one to one (unchanged if already ours)."""
    return _rename(released, _TO_OURS)


def released_name(ours: str) -> str:
    """The released name of one of our tensors that maps one to one."""
    return _rename(ours, _TO_RELEASED)


def _stack_experts(
    prefix: str, parts: dict[str, dict[int, torch.Tensor]], out: dict[str, torch.Tensor]
) -> None:
    """Stack one layer's per-expert matrices into `gate_up_proj` and `down_proj`.

    An incomplete set (an expert or a part missing) is put back under its released names,
    so the load reports those keys instead of guessing.
    """
    count = len(parts.get("down", {}))
    complete = count > 0 and all(
        sorted(parts.get(part, {})) == list(range(count)) for part in EXPERT_PARTS
    )
    if not complete:
        for part, tensors in parts.items():
            for index, tensor in tensors.items():
                out[f"{prefix}.{index}.{part}_proj.weight"] = tensor
        return
    gate = torch.stack([parts["gate"][i] for i in range(count)])
    up = torch.stack([parts["up"][i] for i in range(count)])
    out[f"{prefix}.gate_up_proj"] = torch.cat([gate, up], dim=1)
    out[f"{prefix}.down_proj"] = torch.stack([parts["down"][i] for i in range(count)])


def from_released(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors under our names: released names renamed, q/k/v split, experts stacked."""
    out: dict[str, torch.Tensor] = {}
    experts: dict[str, dict[str, dict[int, torch.Tensor]]] = defaultdict(lambda: defaultdict(dict))
    for name, tensor in state.items():
        if name in UNUSED_RELEASED:
            continue
        expert = _RELEASED_EXPERT.fullmatch(name)
        qkv = _RELEASED_QKV.fullmatch(name)
        if expert:
            experts[expert[1]][expert[3]][int(expert[2])] = tensor
        elif qkv and tensor.shape[0] % 3 == 0:
            for letter, part in zip("qkv", tensor.chunk(3, dim=0), strict=True):
                out[f"{qkv[1]}.{letter}_proj.{qkv[2]}"] = part
        else:
            out[our_name(name)] = tensor
    for prefix, parts in experts.items():
        _stack_experts(prefix, parts, out)
    return out


def to_released(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our tensors under the released names (fresh copies, ready for safetensors)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = defaultdict(dict)
    for name, tensor in state.items():
        experts = _OUR_EXPERTS.fullmatch(name)
        attention = _OUR_QKV.fullmatch(name)
        if experts and experts[2] == "down_proj":
            for index, matrix in enumerate(tensor):
                out[f"{experts[1]}.{index}.down_proj.weight"] = matrix.clone()
        elif experts:
            for index, matrix in enumerate(tensor):
                gate, up = matrix.chunk(2, dim=0)
                out[f"{experts[1]}.{index}.gate_proj.weight"] = gate.clone()
                out[f"{experts[1]}.{index}.up_proj.weight"] = up.clone()
        elif attention:
            qkv[(attention[1], attention[3])][attention[2]] = tensor
        else:
            out[released_name(name)] = tensor.clone()
    for (prefix, kind), parts in qkv.items():
        out[f"{prefix}.qkv_proj.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out
