"""The Pulumi program: load the stack's settings, build the platform, export its outputs.

The engine runs this directory with `runpy.run_path`, which puts `stacks/` first on `sys.path`:
no module in `stacks/` may share a name with the standard library (hence `composition.py`, not
`platform.py`, which would shadow the stdlib `platform` module for the whole program).
"""

from stacks import composition, settings

composition.export(composition.build(settings.load()))
