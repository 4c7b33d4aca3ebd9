"""Rules of the package's layout that a reader relies on: ``core`` imports no Airflow, and the operators
are per API (each takes only its own arguments; ``get_provider_info`` lists them all)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from airflow_provider_optimizely import get_provider_info, operators
from airflow_provider_optimizely.operators._base import OptimizelyBaseOperator

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_optimizely"


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "core").rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_core_imports_no_airflow(path: Path):
    airflow = [name for name in imported_modules(path) if name == "airflow" or name.startswith("airflow.")]
    assert airflow == [], f"{path.relative_to(PACKAGE)} imports {airflow}: core must stay Airflow-free"


def every_operator() -> list[type[OptimizelyBaseOperator]]:
    return [getattr(operators, name) for name in operators.__all__]


def test_every_operator_is_listed_by_the_provider_and_importable_from_its_api_module():
    listed = {m for entry in get_provider_info()["operators"] for m in entry["python-modules"]}
    for operator in every_operator():
        module = operator.__module__
        api_module = (
            f"airflow_provider_optimizely.operators.{operator.hook_class.__module__.rsplit('.', 1)[1]}"
        )
        assert getattr(importlib.import_module(api_module), operator.__name__) is operator
        assert api_module in listed, f"{operator.__name__} ({module}) is not in get_provider_info()"


def test_operator_names_say_the_product_first():
    for operator in every_operator():
        product = {
            "OptimizelyDcpHook": "OptimizelyDcp",
            "OptimizelyOdpHook": "OptimizelyOdp",
            "OptimizelyProfileStoreHook": "OptimizelyProfileStore",
            "OptimoveHook": "Optimove",
        }[operator.hook_class.__name__]
        assert operator.__name__.startswith(product) and operator.__name__.endswith("Operator")


# Each operator's own arguments (enough to build it), and an argument of another API it must refuse.
OWN_AND_MISPLACED = {
    "OptimizelyDcpCreateTableOperator": ({"table_name": "t"}, "primary_key"),
    "OptimizelyDcpRegisterAttributesOperator": ({"table_id": 1, "attributes": []}, "object_type"),
    "OptimizelyDcpUpsertProfilesOperator": ({"table_id": 1, "identifier_column": "id", "rows": []}, "scope"),
    "OptimizelyDcpBulkUploadOperator": ({"table_id": 1, "path": "a.csv"}, "scope"),
    "OptimizelyOdpCreateObjectTypeOperator": ({"object_type": "t"}, "keyfield_locator_type"),
    "OptimizelyOdpRegisterFieldsOperator": ({"object_type": "t", "attributes": []}, "table_id"),
    "OptimizelyOdpUpsertProfilesOperator": ({"identifier_column": "email", "rows": []}, "table_id"),
    "OptimizelyOdpSendEventsOperator": ({"rows": []}, "column_mapping"),
    "OptimizelyProfileStorePutProfilesOperator": ({"identifier_column": "id", "rows": []}, "ttl_seconds"),
    "OptimizelyProfileStoreDeleteProfilesOperator": ({"profile_ids": []}, "ttl_seconds"),
    "OptimoveCreateDataConnectionOperator": ({"name": "n", "primary_key": "id"}, "table_name"),
    "OptimoveUploadRecordsOperator": (
        {"data_connection_uuid": "u", "identifier_column": "id", "rows": []},
        "scope",
    ),
}


def test_every_operator_is_in_the_table_below():
    assert sorted(OWN_AND_MISPLACED) == sorted(o.__name__ for o in every_operator())


@pytest.mark.parametrize("operator", every_operator(), ids=lambda o: o.__name__)
def test_an_argument_of_another_api_is_an_error_when_the_dag_is_parsed(operator):
    own, misplaced = OWN_AND_MISPLACED[operator.__name__]
    operator(task_id="t", **own)  # its own arguments are accepted
    with pytest.raises(TypeError, match=misplaced):
        operator(task_id="t", **own, **{misplaced: "x"})
