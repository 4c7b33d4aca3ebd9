"""The state of all four emulated APIs together: what a reset clears and what the state file keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_optimizely.emulator.dcp_state import DcpState
from airflow_provider_optimizely.emulator.odp import OdpState
from airflow_provider_optimizely.emulator.optimove import OptimoveState
from airflow_provider_optimizely.emulator.profile_store import ProfileStoreState

FORMAT_VERSION = 1


@dataclass
class EmulatorState:
    dcp: DcpState = field(default_factory=DcpState)
    odp: OdpState = field(default_factory=OdpState)
    profile_store: ProfileStoreState = field(default_factory=ProfileStoreState)
    optimove: OptimoveState = field(default_factory=OptimoveState)

    def of(self, api: str) -> Any:
        return getattr(self, api)

    def reset(self) -> None:
        """Empty every API in place: the routers keep their references to these objects."""
        for api in ("dcp", "odp", "profile_store", "optimove"):
            reset_in_place(self.of(api))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "dcp": self.dcp.to_dict(),
            "odp": self.odp.to_dict(),
            "profile_store": self.profile_store.to_dict(),
            "optimove": self.optimove.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmulatorState:
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"state format {data.get('format_version')!r} is not {FORMAT_VERSION}")
        return cls(
            dcp=DcpState.from_dict(data.get("dcp", {})),
            odp=OdpState.from_dict(data.get("odp", {})),
            profile_store=ProfileStoreState.from_dict(data.get("profile_store", {})),
            optimove=OptimoveState.from_dict(data.get("optimove", {})),
        )


def reset_in_place(api_state: Any) -> None:
    """Use the state's own ``reset()``; else swap in a fresh instance's attributes under its lock."""
    if hasattr(api_state, "reset"):
        api_state.reset()
        return
    fresh = type(api_state)()
    lock = getattr(api_state, "lock", None)
    if lock is None:
        api_state.__dict__.update(fresh.__dict__)
        return
    with lock:
        fresh.__dict__.pop("lock", None)
        api_state.__dict__.update(fresh.__dict__)
