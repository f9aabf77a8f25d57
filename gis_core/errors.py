"""The one error hierarchy of the platform.

Lower layers raise these; the web layer renders them as JSON, OGC exception XML or HTML
using the HTTP status and OGC exception code each class carries, and the CLI prints the
message and exits non-zero. Messages name the file, row, field or parameter at fault.
"""

from __future__ import annotations


class UrbanGisError(Exception):
    """Base class: an error a user or operator can act on."""

    http_status = 500
    ogc_code = "NoApplicableCode"

    def __init__(self, message: str, *, locator: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.locator = locator

    def __str__(self) -> str:
        return self.message


class ConfigurationError(UrbanGisError):
    """A setting is missing or invalid; raised at start."""


class DatabaseError(UrbanGisError):
    """The database cannot be reached, started or brought to the expected schema."""

    http_status = 503


class InvalidParameter(UrbanGisError):
    """A request or command parameter is malformed or out of range."""

    http_status = 400
    ogc_code = "InvalidParameterValue"


class MissingParameter(UrbanGisError):
    """A required request parameter is absent."""

    http_status = 400
    ogc_code = "MissingParameterValue"


class NotFound(UrbanGisError):
    """The requested object (parcel, layer, feature, act) does not exist."""

    http_status = 404
    ogc_code = "NotFound"


class Forbidden(UrbanGisError):
    """The caller's role may not see or change this."""

    http_status = 403
    ogc_code = "OperationNotSupported"


class Conflict(UrbanGisError):
    """Someone else changed the object first (optimistic locking) or a key is taken."""

    http_status = 409


class InvalidInput(UrbanGisError):
    """A file or row being imported is unusable; nothing was written."""

    http_status = 422
    ogc_code = "InvalidParameterValue"


class OutsideGridError(InvalidParameter):
    """A coordinate lies outside the area the official transformation grid covers."""
