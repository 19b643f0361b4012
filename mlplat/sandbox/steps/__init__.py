"""The steps of the ML lifecycle in the sandbox, by part (`mlplat.sandbox.ml_lifecycle` lists them
in order):

- `data`: generate, ingest (batch and Firehose), curate, features;
- `model`: train → evaluate → package (the stages of `ml.workflow.train_candidate`), upload,
  register, approve;
- `serving`: deploy, endpoint traffic, data capture;
- `least_privilege`: what the stack's roles may not do is refused;
- `monitoring`: the drift job, the alarms, the on-call notifications, the prediction logs;
- `common`: what they share (the platform outputs, the clock, acting as a role, the report).
"""
