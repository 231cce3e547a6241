"""The timing pass as a command, so external profilers can wrap it.

`python -m vlmprof.runtime.timing_cli SPEC_JSON SETTINGS_JSON OUT IMAGE_ID=PATH ...` builds
the model from the spec, profiles the given pages exactly as a timing shard does (NVTX
ranges `prefill`, `decode`, `sam`, `clip`, `projector`) and writes their run records to OUT.
The Nsight Systems rule runs it under `nsys profile`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vlmprof.models import ModelSpec, build_adapter
from vlmprof.runtime.device import resolve_device
from vlmprof.runtime.profile_shard import ProfileSettings, ShardFailedError, profile_images


def main(argv: list[str] | None = None) -> int:
    """Profile the pages named on the command line; 0 when every record is ok."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4:
        sys.stderr.write(__doc__ or "")
        return 2
    spec = json.loads(args[0])
    images = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in args[3:]]
    adapter = build_adapter(ModelSpec(**{**spec, "device": resolve_device(spec["device"])}))
    settings = ProfileSettings(**{"eos_id": adapter.eos_token_id, **json.loads(args[1])})
    try:
        records = profile_images(adapter, images, settings, Path(args[2]))
    except ShardFailedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0 if all(record.status == "ok" for record in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
