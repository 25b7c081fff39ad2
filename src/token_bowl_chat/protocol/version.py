"""Protocol version.

``1`` is the upstream v1 wire protocol. The additive extensions (``seq``, ``request_id``,
``typing_stopped``, error ``code``) keep the major version, because an old client never sees a
frame shape it cannot read: the frames an old client would misread are sent only to
connections that ask for ``?protocol_version=1.1``.
"""

import re

PROTOCOL_VERSION = "1.1"

# A connection gets the extension frames (``hello``, pushed counts, ``typing_stopped``, ...)
# only when it asks for this version or a later one: a legacy client would misread them.
EXTENSIONS_SINCE = (1, 1)
VERSION_PARAM = "protocol_version"

_VERSION = re.compile(r"([0-9]{1,4})(?:\.([0-9]{1,4}))?")


def wants_extensions(requested: str | None) -> bool:
    """Whether a client asking for protocol ``requested`` (``None`` or empty: it did not ask)
    gets the extension frames. Raises ``ValueError`` for text that is not ``MAJOR[.MINOR]``."""
    if not requested:
        return False
    match = _VERSION.fullmatch(requested)
    if match is None:
        raise ValueError("protocol_version must look like 1.1")
    version = (int(match[1]), int(match[2] or 0))
    return version >= EXTENSIONS_SINCE
