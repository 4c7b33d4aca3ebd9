"""In-memory stand-ins for the API hooks, shared by the operator unit tests (the network is faked here;
tests/integration runs the same operators against the emulator)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from airflow_provider_optimizely.core.errors import BadRequestError, ConflictError, NotFoundError
from airflow_provider_optimizely.core.json_body import encode_json
from airflow_provider_optimizely.core.rest import RequestStats
from airflow_provider_optimizely.core.send_mark import take_mark
from airflow_provider_optimizely.hooks.dcp import OptimizelyDcpHook
from airflow_provider_optimizely.hooks.odp import OptimizelyOdpHook
from airflow_provider_optimizely.hooks.optimove import OptimoveHook
from airflow_provider_optimizely.models.dcp import DcpAttribute, DcpService, DcpTable
from airflow_provider_optimizely.models.odp import SchemaField, SchemaObject
from airflow_provider_optimizely.models.optimove import DataConnection


class FakeClient:
    def __init__(self) -> None:
        self.stats = RequestStats()


class FakeDcp(OptimizelyDcpHook):
    """DCP in memory; ``pages_read`` counts the list pages asked for (100 tables a page)."""

    def __init__(self, *, extras: dict[str, Any] | None = None) -> None:
        super().__init__("fake")
        self._extras = extras or {}
        self.__dict__["_client"] = FakeClient()
        self.services: list[DcpService] = []
        self.tables: dict[int, DcpTable] = {}
        self.attributes: list[DcpAttribute] = []
        self.next_id = 100
        self.pages_read = 0
        self.duplicate_next_create = False
        self.service_conflict = False

    @property
    def extras(self) -> dict[str, Any]:
        return self._extras

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def list_services(self):
        yield from list(self.services)

    def create_service(self, name):
        if self.service_conflict:
            self.services.append(DcpService(id=self._new_id(), name="made by the lost attempt"))
            raise ConflictError(409, "one service per account", method="POST", path="dcp_services")
        service = DcpService(id=self._new_id(), name=name)
        self.services.append(service)
        return service

    def list_tables(self, service_id=None):
        rows = [t for t in self.tables.values() if t.dcp_service_id == service_id]
        for start in range(0, max(len(rows), 1), 100):
            self.pages_read += 1
            yield from rows[start : start + 100]

    def create_table(
        self, name, keyfield_locator_type="uid", keyfield_locator_name=None, description=None, service_id=None
    ):
        copies = 2 if self.duplicate_next_create else 1
        made = []
        for _ in range(copies):
            table = DcpTable(
                id=self._new_id(),
                name=name,
                dcp_service_id=service_id,
                keyfield_locator_type=keyfield_locator_type,
                keyfield_locator_name=keyfield_locator_name or "",
            )
            self.tables[table.id] = table
            made.append(table)
        if self.duplicate_next_create:
            self.client.stats.add(retries=1, maybe_applied_twice=1)
            self.duplicate_next_create = False
        return made[-1]  # the answer of the retried request describes the second table

    def delete_table(self, table_id):
        self.tables[table_id] = self.tables[table_id].model_copy(update={"archived": True})

    def list_attributes(self, table_id):
        yield from [a for a in self.attributes if a.dcp_datasource_id == table_id]

    def create_attribute(self, table_id, name, datatype, description=None, format=None):
        live = {a.name for a in self.attributes if a.dcp_datasource_id == table_id and not a.archived}
        if name in live:
            raise ConflictError(409, "exists", method="POST", path="attributes")
        attribute = DcpAttribute(
            id=self._new_id(), name=name, datatype=datatype, format=format, dcp_datasource_id=table_id
        )
        self.attributes.append(attribute)
        return attribute


class FakeOdp(OptimizelyOdpHook):
    def __init__(self) -> None:
        super().__init__("fake")
        self.__dict__["_client"] = FakeClient()
        self.objects: dict[str, SchemaObject] = {}
        self.lost_answer = False
        self.field_calls = 0

    def get_schema_object(self, object_type):
        return self.objects.get(object_type)

    def create_schema_object(self, object_type, display_name, description=None):
        if object_type in self.objects:
            raise BadRequestError(400, "exists", method="POST", path="schema/objects")
        self.objects[object_type] = SchemaObject(name=object_type, display_name=display_name)
        if self.lost_answer:  # the first attempt was applied; the retry is refused as a duplicate
            raise BadRequestError(400, "exists", method="POST", path="schema/objects")
        return self.objects[object_type]

    def create_schema_field(self, object_type, name, display_name, type, description=None):
        self.field_calls += 1
        fields = self.objects[object_type].fields
        if any(f.name == name for f in fields):
            raise BadRequestError(400, "exists", method="POST", path="fields")
        field = SchemaField(name=name, display_name=display_name, type=type)
        fields.append(field)
        return field


class FakeOptimove(OptimoveHook):
    def __init__(self) -> None:
        super().__init__("fake")
        self.__dict__["_client"] = FakeClient()
        self.created: list[tuple[str, str]] = []
        self.gone: set[str] = set()

    def create_connection(self, name, primary_key, description=""):
        self.created.append((name, primary_key))
        return DataConnection(data_connection_uuid=f"uuid-{len(self.created)}")

    def upload_data(self, connection_uuid, records, **kwargs):
        if connection_uuid in self.gone:
            raise NotFoundError(404, "no such data connection", method="POST", path="upload_data")
        return {}

    @property
    def base_url(self) -> str:
        return "https://optimove.test"

    @property
    def brand_key(self) -> str:
        return "brand"


class FakeVariables:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key, default=None, deserialize_json=False):
        return self.values.get(key, default)

    def set(self, key, value, description=None, serialize_json=False):
        self.values[key] = value


def with_hook(operator, hook):
    operator.__dict__["hook"] = hook
    return operator


class Ti:
    """The task instance a task's context holds: what names its run, and its XComs (kept as JSON)."""

    def __init__(self, run_id: str | None = None, dag_id: str = "dag", task_id: str = "task") -> None:
        self.dag_id, self.task_id, self.map_index = dag_id, task_id, -1
        self.run_id = run_id or f"manual__{uuid.uuid4().hex}"
        self.try_number = 1
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = json.loads(json.dumps(value))


def on_the_wire(bodies: Any) -> Any:
    """What an API receives for ``bodies``: the JSON the hook would send, read back. Makes the pending
    send mark as the REST client does just before sending (``core.send_mark``)."""
    mark = take_mark()
    if mark is not None:
        mark()
    return json.loads(encode_json(bodies))
