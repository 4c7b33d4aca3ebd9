"""What may go into a URL: which bases are safe to send credentials to, and identifiers as path segments."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, urlsplit

from airflow_provider_optimizely.core.errors import InsecureUrlError, InvalidIdentifierError

# Path segments that every HTTP stack on the way (urllib3, proxies, the server) may collapse.
_DOT_SEGMENTS = frozenset({"", ".", ".."})


def path_segment(value: object, slot: str) -> str:
    """``value`` as exactly one URL path segment (every reserved character percent-encoded), so that no
    identifier can leave its route; ``slot`` names it in the error (``"DCP customer id"``).

    ``.``, ``..`` and the empty string are refused with ``InvalidIdentifierError``: encoding them
    (``%2E``) would not help, since servers and proxies decode and normalise such segments.
    """
    text = str(value)
    if text in _DOT_SEGMENTS:
        raise InvalidIdentifierError(slot, value)
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        raise InvalidIdentifierError(slot, value, "it is not valid Unicode (a lone surrogate)") from None


def all_path_segments(texts: list[str]) -> bool:
    """Whether ``path_segment`` takes each of ``texts`` (checked on the whole list at once)."""
    if not _DOT_SEGMENTS.isdisjoint(texts):
        return False
    try:
        "".join(texts).encode()  # quote() percent-encodes UTF-8: a lone surrogate has none
    except UnicodeEncodeError:
        return False
    return True


def check_url_is_safe(url: str) -> None:
    """HTTPS everywhere; plain HTTP only to a loopback host (the emulator)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    # The URL itself holds no secret (auth goes in headers), but keep only scheme and host in the message.
    raise InsecureUrlError(
        f"refusing {parts.scheme or 'scheme-less'} URL for host {parts.hostname!r}: "
        "use https:// (plain http:// is allowed only to localhost or a literal loopback address)"
    )


def is_loopback(host: str) -> bool:
    """``localhost`` or a literal loopback address. Other names (``x.localhost`` included) are not
    trusted by name: what they resolve to is up to the resolver of the machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def host_of(url: str) -> str:
    """Host and port as errors show them: no scheme, no user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def path_of(url: str) -> str:
    """The URL path as sent (still percent-encoded): no scheme, host, query string or fragment."""
    return urlsplit(url).path or "/"
