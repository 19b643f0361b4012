"""The sandbox: the platform realized on an embedded moto server, and the lifecycle run against it.

- `server`: a moto server on loopback (free port) and boto3 sessions pointed at it.
- `realize`: `RealizingMocks`, the mock monitor that creates each registered resource in that
  server through boto3 and hands the real ids and ARNs back to the program.
- `alarms`: CloudWatch alarm evaluation (moto stores alarms but never evaluates them).
- `lifecycle`: the step runner behind `mlplat sandbox` and its JSON report.

Nothing here is imported by the Pulumi program: the program stays the one `pulumi up` runs.
"""
