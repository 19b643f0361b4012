"""Lambda: functions and invocations (faked by the plan engine; the sandbox has no realizer)."""

from __future__ import annotations

from mlplat.aws.registry import AwsType, Fake, Outputs, Service

# --- the plan engine's fakes


def _fake_function(f: Fake) -> Outputs:
    arn = f.arn("lambda", f"function:{f.physical}")
    return f.physical, {
        "name": f.physical,
        "arn": arn,
        "qualifiedArn": f"{arn}:$LATEST",
        "invokeArn": f"arn:aws:apigateway:{f.region}:lambda:path/2015-03-31/functions/{arn}"
        "/invocations",
        "version": "$LATEST",
    }


def _fake_invocation(f: Fake) -> Outputs:
    # the function's answer is only known once it ran; an empty JSON object stands in for it
    return f"{f.inputs.get('functionName')}_$LATEST_{f.digest(32)}", {"result": "{}"}


# --- the registry entries

SERVICE = Service(
    owns=("lambda",),
    types=(
        AwsType("aws:lambda/function:Function", fake=_fake_function),
        AwsType("aws:lambda/invocation:Invocation", fake=_fake_invocation),
    ),
)
