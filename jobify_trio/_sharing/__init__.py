"""The sharing protocol: several app instances on one store (see ``docs/sharing.rst``)."""
