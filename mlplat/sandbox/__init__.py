"""The sandbox: the platform realized on an embedded moto server, and the lifecycle run against it.

- `server`: a moto server on loopback (free port), boto3 sessions pointed at it, and IAM
  enforcement on demand (`SandboxServer.iam_enforced`).
- `realize`: `RealizingMocks`, the mock monitor that creates each registered resource in that
  server through boto3 and hands the real ids and ARNs back to the program.
- `context`: the step, its result, the report and the context the steps share.
- `lifecycle`: the step runner behind `mlplat sandbox` and the platform steps.
- `ml_lifecycle`: the ML lifecycle's steps in order, on the realized platform, each model's
  side by side (`<step>:<model>`); `steps/` holds them by stage (data, model, serving, least
  privilege, monitoring).
- `pipeline`: a deployed SageMaker Pipeline definition executed as SageMaker would, its
  containers forked from a warm server (`warm`: what each would otherwise import and parse).
- What AWS does by itself and moto does not: `firehose` (record format conversion and delivery),
  `alarms` (CloudWatch alarm evaluation and notifications).

Nothing here is imported by the Pulumi program: the program stays the one `pulumi up` runs.
"""
