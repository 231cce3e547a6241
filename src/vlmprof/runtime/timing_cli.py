"""The timing pass as a command, so external profilers can wrap it.

`python -m vlmprof.runtime.timing_cli SPEC_JSON SETTINGS_JSON OUT IMAGE_ID=PATH ...` claims
the device and builds the model from the spec as a timing job does, profiles the given
pages exactly as a timing shard does (NVTX ranges `prefill`, `decode`, `sam`, `clip`,
`projector`) and writes their run records to OUT. SETTINGS_JSON holds every field of
`ProfileSettings` but `eos_id`. The Nsight Systems rule runs it under `nsys profile`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from vlmprof.models.base import ModelSpec
from vlmprof.runtime.launcher import launched_model
from vlmprof.runtime.profile_settings import ProfileSettings
from vlmprof.runtime.profile_shard import ShardFailedError, profile_images


def timing_command(
    spec: str, settings: str, out: Path, pages: Sequence[tuple[str, str | Path]]
) -> list[str]:
    """The command line that profiles `pages` ((image_id, path) pairs) into `out`."""
    named = [f"{image_id}={path}" for image_id, path in pages]
    return [sys.executable, "-m", "vlmprof.runtime.timing_cli", spec, settings, str(out), *named]


def main(argv: list[str] | None = None) -> int:
    """Profile the pages named on the command line; 0 when every record is ok."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4:
        sys.stderr.write(__doc__ or "")
        return 2
    spec = ModelSpec(**json.loads(args[0]))
    images = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args[3:]]
    with launched_model(spec) as (adapter, placement):
        settings = ProfileSettings(**json.loads(args[1]), eos_id=adapter.eos_token_id)
        try:
            records = profile_images(adapter, placement, images, settings, Path(args[2]))
        except ShardFailedError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0 if all(record.status == "ok" for record in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
