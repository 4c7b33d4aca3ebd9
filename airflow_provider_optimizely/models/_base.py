"""The base of every resource model: a vendor's new field is kept, never an error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class VendorModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_body(self) -> dict:
        """The JSON body to send: unset optional fields left out."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)
