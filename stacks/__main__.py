"""The Pulumi program: load the stack's settings, build the platform, export its outputs."""

from stacks import platform, settings

platform.export(platform.build(settings.load()))
