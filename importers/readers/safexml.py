"""XML parsing that cannot be turned against the server.

CGXML and GML arrive from outside (surveyors, e-mail, portals). A document type
declaration is the door to entity expansion ("billion laughs") and external entities
(XXE: reading local files or URLs), and neither format needs one, so any DTD is refused
before parsing starts. The parser itself also resolves no entities, fetches nothing
from the network and keeps lxml's limits on huge text nodes; documents are read with
``iterparse`` so a large file is streamed, not loaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from lxml import etree

from gis_core.errors import InvalidInput

# How far into a file a DOCTYPE could hide: it must come before the root element, and
# anything beyond a few comments and the XML declaration is already the root.
_PROLOG_BYTES = 64 * 1024


def refuse_dtd(head: bytes, name: str) -> None:
    """Raise when the prolog of a document declares a DTD or entities."""
    # NUL bytes dropped so a UTF-16 document cannot hide the declaration.
    prolog = head[:_PROLOG_BYTES].replace(b"\x00", b"").upper()
    if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
        raise InvalidInput(
            f"{name}: the document declares a DTD (<!DOCTYPE>/<!ENTITY>); CGXML and GML "
            "need none and it could expand entities or read other files, so the file "
            "is refused"
        )


def iter_elements(
    stream: IO[bytes], name: str, *, tags: tuple[str, ...] | None = None
) -> Iterator[etree._Element]:
    """Yield completed elements of a document safely (the caller clears them).

    ``stream`` must be at its start; the first bytes are checked for a DTD, then the
    stream is rewound and parsed incrementally.
    """
    head = stream.read(_PROLOG_BYTES)
    refuse_dtd(head, name)
    stream.seek(0)
    parser_events = etree.iterparse(
        stream,
        events=("end",),
        tag=tags,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for _event, element in parser_events:
            yield element
    except etree.XMLSyntaxError as exc:
        raise InvalidInput(f"{name}: not well-formed XML: {exc}") from None


def local_name(element: etree._Element) -> str:
    """The tag without its namespace ({http://...}Land → Land)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]
