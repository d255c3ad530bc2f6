"""Who may use the dashboard: loopback detection, the access token and CSRF checks.

The rules (docs/operations.rst, "Security model"):

* Bound to a loopback address, the dashboard needs no token, but it answers only
  requests whose ``Host`` is a loopback name or address (no DNS rebinding).
* Bound anywhere else (or with ``require_token=True``), every request needs the token:
  an ``Authorization: Bearer`` header, or the cookie set by opening ``/?token=...``.
* Every action is a POST that must also carry the per-process CSRF token in the
  ``X-CSRF-Token`` header, equal to the ``SameSite=Strict`` cookie set with the page
  (double submit). A request authenticated by a Bearer header needs no CSRF token:
  browsers never add that header on their own.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping

import attrs

__all__ = [
    "AUTH_COOKIE",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "Access",
    "Verdict",
    "is_loopback",
]

AUTH_COOKIE = "jobify_trio_token"
CSRF_COOKIE = "jobify_trio_csrf"
CSRF_HEADER = "x-csrf-token"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1), brackets allowed."""
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8000`` -> ``::1``)."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@attrs.frozen(kw_only=True)
class Verdict:
    """Whether a request may proceed; ``status`` and ``reason`` if not."""

    allowed: bool
    status: int = 200
    reason: str = ""


_OK = Verdict(allowed=True)


@attrs.frozen(kw_only=True)
class Access:
    """The access rules of one dashboard: its token (if any) and its CSRF token."""

    token: str | None
    csrf: str = attrs.field(factory=lambda: secrets.token_urlsafe(32))

    @classmethod
    def create(cls, *, token: str | None, require_token: bool) -> Access:
        if token is not None and (not isinstance(token, str) or len(token) < 8):
            raise ValueError("the dashboard token must be a str of at least 8 characters")
        if require_token and token is None:
            raise ValueError(
                "this dashboard requires a token (it is not bound to a loopback address): "
                "pass token=..."
            )
        return cls(token=token)

    def check_read(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Verdict:
        """May this request read the page and its data?"""
        if self.token is None:
            host = _host_name(headers.get("host", ""))
            if not is_loopback(host):
                return Verdict(allowed=False, status=403, reason="host is not a loopback name")
            return _OK
        if self._bearer(headers) or _same(cookies.get(AUTH_COOKIE), self.token):
            return _OK
        return Verdict(allowed=False, status=403, reason="this dashboard needs its token")

    def check_action(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Verdict:
        """May this POST act on jobs? Needs read access, then the CSRF double submit."""
        verdict = self.check_read(headers, cookies)
        if not verdict.allowed:
            return verdict
        if self.token is not None and self._bearer(headers):
            return _OK
        origin = headers.get("origin")
        if origin is not None and origin.split("://", 1)[-1] != headers.get("host"):
            return Verdict(allowed=False, status=403, reason="cross-origin request")
        header = headers.get(CSRF_HEADER)
        if _same(header, self.csrf) and _same(cookies.get(CSRF_COOKIE), self.csrf):
            return _OK
        return Verdict(allowed=False, status=403, reason="missing or wrong CSRF token")

    def check_token(self, given: str | None) -> bool:
        """Is ``given`` (from ``/?token=``) this dashboard's token?"""
        return self.token is not None and _same(given, self.token)

    def _bearer(self, headers: Mapping[str, str]) -> bool:
        assert self.token is not None
        scheme, _, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and _same(value.strip(), self.token)
