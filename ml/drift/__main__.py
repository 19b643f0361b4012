"""`python -m ml.drift`: the scheduled drift job's entry point (the stack's processing job)."""

from ml.drift.job import main

raise SystemExit(main())
