"""The actors of the runtime, one module each. See ``docs/design.rst``."""
