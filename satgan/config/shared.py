"""What the settings classes share: the device setting's type and pattern, and ``to_dict``."""

from __future__ import annotations

import dataclasses
from typing import Any

Device = str
DEVICES = r"auto|cpu|mps|cuda(:\d+)?"  # whether the device is here is checked where it is used


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)
