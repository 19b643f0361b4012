"""Command groups of the `mlplat` CLI; each module exposes `register(app)`."""
