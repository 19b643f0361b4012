"""Reading IAM policy documents: statements, principals and the conditions that narrow them.

Shared by the resource-policy and trust-policy rules. A condition *narrows* a statement when it
requires a key to match concrete values: a positive operator (`StringEquals`, `ArnLike`,
`ForAnyValue:StringEquals`...), not a negated one (`StringNotEquals`), not `...IfExists` or
`ForAllValues:` (both hold when the key is absent from the request), not `Null`, and no value that
is a bare `*`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from policies.core import Resource, json_document, listify

EVERYONE = "*"


def statements(resource: Resource, prop: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(label, statement) for every statement of the document in `resource.<prop>`."""
    document = json_document(resource.get(prop), f".{prop} of {resource.where()}")
    if not isinstance(document, Mapping):
        return
    for i, statement in enumerate(listify(document.get("Statement"))):
        if isinstance(statement, Mapping):
            yield f"statement {statement.get('Sid') or i}", statement


def allows(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Allow"


def principals(statement: Mapping[str, Any]) -> dict[str, list[str]]:
    """The statement's principals by kind (`AWS`, `Service`, `Federated`...); `*` alone is
    `{"*": ["*"]}`."""
    principal = statement.get("Principal")
    if principal == EVERYONE:
        return {EVERYONE: [EVERYONE]}
    if not isinstance(principal, Mapping):
        return {}
    return {
        str(kind): [str(v) for v in listify(values) if isinstance(v, str)]
        for kind, values in principal.items()
    }


def grants_everyone(statement: Mapping[str, Any]) -> bool:
    """An Allow to `*` (or `{"AWS": "*"}`), or to everyone but a list (`NotPrincipal`)."""
    if not allows(statement):
        return False
    if "NotPrincipal" in statement:
        return True
    return any(EVERYONE in values for values in principals(statement).values())


def _concrete(value: Any) -> bool:
    values = listify(value)
    return bool(values) and all(isinstance(v, str) and v and v != EVERYONE for v in values)


def narrowing_keys(statement: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """The condition keys among `keys` (case-insensitive) that the statement requires to match
    concrete values."""
    wanted = {k.lower() for k in keys}
    condition = statement.get("Condition")
    found: list[str] = []
    if not isinstance(condition, Mapping):
        return found
    for operator, block in condition.items():
        op = str(operator)
        if (
            not isinstance(block, Mapping)
            or op == "Null"
            or op.endswith("IfExists")
            or op.startswith("ForAllValues:")
            or "Not" in op
        ):
            continue
        for key, value in block.items():
            if str(key).lower() in wanted and _concrete(value):
                found.append(str(key))
    return found


def actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in listify(statement.get("Action", statement.get("NotAction")))]
