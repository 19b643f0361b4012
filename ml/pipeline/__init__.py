"""The model pipeline's steps, as the platform image runs them: `python -m ml.pipeline <command>`.

One module per step of the SageMaker Pipeline (`components.model_pipeline` writes the definition,
the sandbox executes it; the names they share are in `ml.contracts`):

* `window`: the raw partitions of the window -> one work item each;
* `curate`: raw -> curated zone (validated, de-duplicated; rejected rows aside; metrics);
* `features`: curated -> features zone, with the feature code the endpoint serves;
* `train`: the features partitions the work items name -> a model directory (a training job);
* `evaluate`: the gate against the baselines and the version that serves -> `gate.json`.

Curate and features handle one partition at a time (read, transform, commit, release), so an
instance's memory is bounded by one partition whatever the window, and SageMaker shards the work
items across instances by S3 key. Every path is an argument (Processing) or comes from the
training contract's environment (`ml.train.ContainerPaths`), so tests and the sandbox map
`/opt/ml` to a directory of their own. `ml.pipeline.__main__` is the command line.
"""
