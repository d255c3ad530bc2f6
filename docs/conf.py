"""Sphinx configuration. ``nox -s docs`` builds with -W and nitpicky: every reference resolves.

The build is offline: intersphinx reads the Python and trio inventories shipped in
``docs/_inv/`` (refresh them with ``python docs/_inv/refresh.py``), and the links it makes
point at the real documentation sites.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "jobify_trio"
author = "jobify_trio developers"
copyright = "2026, jobify_trio developers"
release = "0.1.0"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
exclude_patterns = ["_build", "_inv"]
templates_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}

# -- cross-references ----------------------------------------------------------------------

_INV = Path(__file__).resolve().parent / "_inv"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(_INV / "python.inv")),
    "trio": ("https://trio.readthedocs.io/en/stable", str(_INV / "trio.inv")),
}

nitpicky = True

# The package annotates with `from __future__ import annotations`; a name imported only for
# type checking stays a string, which autodoc renders as written ("tzinfo", "Lifespan").
# ``_resolve_short_name`` below looks these short names up under their full names.
SHORT_NAMES = {
    "datetime": "datetime.datetime",
    "timedelta": "datetime.timedelta",
    "tzinfo": "datetime.tzinfo",
    "Path": "pathlib.Path",
}


def _private_types() -> dict[str, str]:
    """Full names of the private classes and aliases the public API hands out or accepts.

    They are found through the public object that uses them, so the reference follows them
    when modules move; ``.. autoclass:: |TaskOptions|`` in docs/reference/ names them.
    """
    import jobify_trio

    homes = {
        "TaskOptions": jobify_trio.Task,  # Task.options
        "CronExpression": jobify_trio.Cron,  # Cron.parsed, Cron.compile()
        "WallClock": jobify_trio.Jobify,  # Jobify(wall_clock=...)
        "Lifespan": jobify_trio.Jobify,  # Jobify(lifespan=...), JobRouter(lifespan=...)
        "ExceptionHandler": jobify_trio.Jobify,  # exception_handlers=...
        "JobListener": jobify_trio.Jobify,  # Jobify.add_listener
    }
    out = {}
    for name, home in homes.items():
        obj = getattr(sys.modules[home.__module__], name)
        # a class knows its module; a type alias is found where its source defines it
        module = obj.__module__ if isinstance(obj, type) else _defining_module(name)
        out[name] = f"{module}.{name}"
    return out


def _defining_module(name: str) -> str:
    """The package module whose source defines ``name`` (a type alias has no __module__)."""
    import jobify_trio

    root = Path(jobify_trio.__file__).parent
    pattern = re.compile(rf"^{name}(: TypeAlias)? = ", re.MULTILINE)
    for path in sorted(root.rglob("*.py")):
        if pattern.search(path.read_text(encoding="utf-8")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            return ".".join(parts)
    raise LookupError(f"cannot find where {name} is defined")


PRIVATE_TYPES = _private_types()
SHORT_NAMES |= PRIVATE_TYPES

nitpick_ignore_regex = [
    # Type variables of the generic classes (Task[P, R], Job[R], ScheduleBuilder[R]): they
    # stand for the user's own argument and return types and have no page of their own.
    # (Sphinx spells a ParamSpec in an overload's ``self`` annotation ``typing.~P``.)
    (r"py:(class|obj|data)", r"(jobify_trio\.[\w.]+\.|typing\.~)?[PRT](\.args|\.kwargs)?"),
    # The private base class of Jobify and JobRouter (JobRouter.parent returns one of them);
    # what it provides is documented on both classes.
    (r"py:class", r"(jobify_trio\.[\w.]+\.)?Layer"),
    # Classes of the optional extras' libraries (no inventory is shipped for them).
    (r"py:class", r"(prometheus_client\.[\w.]+\.)?CollectorRegistry"),
    (r"py:class", r"(starlette\.[\w.]+\.)?Starlette"),
]

# -- the list of guides ----------------------------------------------------------------------

# How-to pages written alongside the features they describe; the index lists those present.
OPTIONAL_HOWTOS = ["cron", "retries", "serialization", "middleware", "durability", "postgres"]

# The public modules; the reference must document every name in their ``__all__``.
PUBLIC_MODULES = [
    "jobify_trio",
    "jobify_trio.exceptions",
    "jobify_trio.middleware",
    "jobify_trio.serializers",
    "jobify_trio.storage",
    "jobify_trio.testing",
    "jobify_trio.metrics",
    "jobify_trio.dashboard",
]


def _list_optional_howtos(app: Any, docname: str, source: list[str]) -> None:
    if docname != "index":
        return
    here = Path(app.srcdir)
    present = [name for name in OPTIONAL_HOWTOS if (here / f"{name}.rst").exists()]
    source[0] = source[0].replace("   |optional-howtos|\n", "".join(f"   {n}\n" for n in present))


def _fill_private_types(app: Any, docname: str, source: list[str]) -> None:
    """``.. autoclass:: |TaskOptions|`` in the reference names the class where it lives."""
    if docname.startswith("reference/"):
        for name, full in PRIVATE_TYPES.items():
            source[0] = source[0].replace(f"|{name}|", full)


def _resolve_short_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``tzinfo`` as ``datetime.tzinfo``, ``Lifespan`` as its documented alias..."""
    full = SHORT_NAMES.get(node.get("reftarget", ""))
    if full is None or node.get("refdomain") != "py":
        return None
    node["reftarget"] = full
    domain = env.get_domain("py")
    found = None
    for reftype in (node["reftype"], "obj"):  # "obj": an alias is data, named as a class
        found = found or domain.resolve_xref(
            env, node["refdoc"], app.builder, reftype, full, node, contnode
        )
    if found is None:
        from sphinx.ext import intersphinx

        found = intersphinx.missing_reference(app, env, node, contnode)
    return found


def _public_name(cls: type) -> bool:
    """Whether ``cls`` is importable from a public module or from outside the package."""
    home = getattr(cls, "__module__", "") or ""
    if not home.startswith("jobify_trio"):
        return True
    for public in PUBLIC_MODULES:
        module = importlib.import_module(public)
        if cls.__name__ in module.__all__ and getattr(module, cls.__name__) is cls:
            return True
    return False


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """Show only public bases: a private base (``Layer``) is replaced by its public ones.

    The members a class inherits from a private base are documented on the class itself
    (``:inherited-members:`` in the reference).
    """
    out: list[Any] = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if isinstance(base, type) and not _public_name(base):
            pending[:0] = [b for b in base.__bases__ if b is not object]
        elif base not in out:
            out.append(base)
    bases[:] = out or [object]


# Private modules whose public names say (``__module__``) they live in a public module;
# the [source] links of those names point at the private module that defines them.
MOVED_DEFINITIONS = {"jobify_trio.storage": "jobify_trio._storage._records"}


def _follow_moved(app: Any, modname: str, attribute: str) -> str | None:
    """``viewcode-follow-imported``: the module whose source defines ``modname.attribute``."""
    private = MOVED_DEFINITIONS.get(modname)
    if private and attribute.split(".")[0] in importlib.import_module(private).__all__:
        return private
    return None


def _check_reference_complete(app: Any, env: Any) -> None:
    """Warn (an error under -W) for a public name that the reference does not document."""
    from sphinx.util import logging

    documented = set(env.get_domain("py").objects)
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            if f"{module_name}.{name}" not in documented:
                logging.getLogger(__name__).warning(
                    "public name %s.%s is missing from the API reference", module_name, name
                )


def setup(app: Any) -> None:
    app.connect("source-read", _list_optional_howtos)
    app.connect("source-read", _fill_private_types)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("missing-reference", _resolve_short_name)
    app.connect("env-check-consistency", _check_reference_complete)
    app.connect("viewcode-follow-imported", _follow_moved)


html_theme = "alabaster"
html_static_path: list[str] = []
