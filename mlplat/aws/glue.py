"""Glue: the data catalog's databases and tables (what Athena queries)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplat.aws.realizing import (
    RealizeContext,
    RealizeError,
    Registration,
    drop_empty,
    exists,
    pascal,
)
from mlplat.aws.registry import AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


def _fake_database(f: Fake) -> Outputs:
    return f"{f.account}:{f.physical}", {
        "name": f.physical,
        "arn": f.arn("glue", f"database/{f.physical}"),
    }


def _fake_table(f: Fake) -> Outputs:
    db = f.inputs.get("databaseName", "db")
    return f"{f.account}:{db}:{f.physical}", {
        "name": f.physical,
        "arn": f.arn("glue", f"table/{db}/{f.physical}"),
    }


# --- the sandbox's realizers and readers


def _read_database(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("glue").get_database(Name=state["name"])


def _glue_database(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    glue = ctx.client("glue")
    name = reg.physical(lower=True, sep="_", max_len=255)
    catalog = str(reg.get("catalogId", ctx.account_id))
    database = drop_empty(
        {
            "Name": name,
            "Description": reg.get("description"),
            "LocationUri": reg.get("locationUri"),
            "Parameters": reg.get("parameters"),
        }
    )
    found = exists(lambda: glue.get_database(Name=name), "EntityNotFoundException")
    if found is None:
        request: dict[str, Any] = {"DatabaseInput": database}
        if reg.get("tags"):
            request["Tags"] = dict(reg.get("tags"))
        glue.create_database(**request)
    elif any(found["Database"].get(k) != v for k, v in database.items()):
        glue.update_database(Name=name, DatabaseInput=database)
    return f"{catalog}:{name}", {
        "name": name,
        "catalogId": catalog,
        "arn": ctx.arn("glue", f"database/{name}"),
    }


_TABLE_RENAMES = {
    "serDeInfo": "SerdeInfo",
    "skewedColumnValueLocationMaps": "SkewedColumnValueLocationMaps",
}
_TABLE_OPAQUE = frozenset({"parameters", "skewedColumnValueLocationMaps"})


def _table_input(reg: Registration, name: str) -> dict[str, Any]:
    table = drop_empty(
        {
            "Name": name,
            "Description": reg.get("description"),
            "Owner": reg.get("owner"),
            "Retention": reg.get("retention"),
            "TableType": reg.get("tableType"),
            "Parameters": reg.get("parameters"),
            "PartitionKeys": pascal(reg.get("partitionKeys"), _TABLE_RENAMES, _TABLE_OPAQUE),
            "StorageDescriptor": pascal(
                reg.get("storageDescriptor"), _TABLE_RENAMES, _TABLE_OPAQUE
            ),
            "ViewOriginalText": reg.get("viewOriginalText"),
            "ViewExpandedText": reg.get("viewExpandedText"),
        }
    )
    for dropped in ("partitionIndices", "openTableFormatInput", "targetTable"):
        if reg.get(dropped):
            raise RealizeError(f"{reg.name}: `{dropped}` is not supported by the sandbox")
    return table


def _read_table(ctx: RealizeContext, ident: str, state: Mapping[str, Any]) -> Any:
    return ctx.client("glue").get_table(DatabaseName=state["databaseName"], Name=state["name"])


def _glue_table(ctx: RealizeContext, reg: Registration) -> tuple[str, dict[str, Any]]:
    glue = ctx.client("glue")
    name = reg.physical(lower=True, sep="_", max_len=255)
    database = str(reg.require("databaseName"))
    catalog = str(reg.get("catalogId", ctx.account_id))
    table = _table_input(reg, name)
    found = exists(
        lambda: glue.get_table(DatabaseName=database, Name=name), "EntityNotFoundException"
    )
    if found is None:
        glue.create_table(DatabaseName=database, TableInput=table)
    elif any(found["Table"].get(k) != v for k, v in table.items()):
        glue.update_table(DatabaseName=database, TableInput=table)
    return f"{catalog}:{database}:{name}", {
        "name": name,
        "databaseName": database,
        "catalogId": catalog,
        "arn": ctx.arn("glue", f"table/{database}/{name}"),
    }


# --- the registry entries

SERVICE = Service(
    owns=("glue",),
    types=(
        AwsType(
            "aws:glue/catalogDatabase:CatalogDatabase",
            fake=_fake_database,
            realize=_glue_database,
            read=_read_database,
            force_new=frozenset({"name", "catalogId"}),
        ),
        AwsType(
            "aws:glue/catalogTable:CatalogTable",
            fake=_fake_table,
            realize=_glue_table,
            read=_read_table,
            force_new=frozenset({"name", "databaseName", "catalogId"}),
        ),
    ),
)
