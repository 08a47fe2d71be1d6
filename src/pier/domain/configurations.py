"""The built-in configurations: named compute profiles an instance gets."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

from pier.domain.errors import ConfigurationNotFound

GIB: Final = 2**30


class Configuration(BaseModel):
    """A named compute profile: vCPU, memory and GPUs for one instance."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    name: str
    """What a node's ``configuration`` names: c1.2, g1.1..."""
    vcpu: int
    """CPUs an instance may use."""
    memory_bytes: int
    """Memory an instance may use."""
    gpus: int = 0
    """GPUs given to an instance."""

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


CONFIGURATIONS: Final[dict[str, Configuration]] = {
    c.name: c
    for c in (
        Configuration(name="c1.2", vcpu=2, memory_bytes=8 * GIB),
        Configuration(name="c1.4", vcpu=4, memory_bytes=16 * GIB),
        Configuration(name="c1.8", vcpu=8, memory_bytes=32 * GIB),
        Configuration(name="c1.16", vcpu=16, memory_bytes=64 * GIB),
        Configuration(name="g1.1", vcpu=8, memory_bytes=48 * GIB, gpus=1),
        Configuration(name="g1.2", vcpu=16, memory_bytes=96 * GIB, gpus=2),
    )
}

DEFAULT_CONFIGURATION: Final = "c1.2"


def format_bytes(size_bytes: int) -> str:
    """A byte count for people: "8 GiB", "200 MiB", "1.5 GiB"."""
    for unit, unit_bytes in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size_bytes >= unit_bytes:
            return f"{size_bytes / unit_bytes:.4g} {unit}"
    return f"{size_bytes} B"


def get_configuration(name: str) -> Configuration:
    """The configuration called ``name``; InvalidSpec naming ``configuration`` if unknown."""
    try:
        return CONFIGURATIONS[name]
    except KeyError:
        raise ConfigurationNotFound(name, sorted(CONFIGURATIONS)) from None
