"""One hosted model: the parent its own components share in the stack.

A stack hosts every model of its `models` list on the shared lake, network, cluster, on-call topic
and audit trail. Each model gets its own registry group, training role, pipeline, endpoint, drift
job and alarms; the composition root makes them children of the model's `ModelGroup` (logical
name: the model's name), so a plan, a cost estimate or the Pulumi console shows what belongs to
which model. The group owns no cloud resource itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi

# A model package's name under `ml/models/` (`ml.models.NAME_PATTERN`).
MODEL_NAME_PATTERN = r"[a-z][a-z0-9]{1,19}"


@dataclass(frozen=True, slots=True)
class ModelGroupArgs:
    model: str  # `ml.models.<model>`
    task: str = ""  # what the model predicts (shown in the group's outputs)

    def __post_init__(self) -> None:
        if not re.fullmatch(MODEL_NAME_PATTERN, self.model):
            raise ValueError(
                f"ModelGroupArgs: model {self.model!r}: the name of a model package under "
                "ml/models/ (2-20 lower-case letters and digits, starting with a letter)"
            )


class ModelGroup(pulumi.ComponentResource):
    """The parent of one model's components."""

    model: str

    def __init__(
        self, name: str, args: ModelGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:models:Model", name, None, opts)
        self.model = args.model
        self.register_outputs({"model": args.model, "task": args.task})
