"""Protocol version.

``1`` is the upstream v1 wire protocol. The additive extensions (``seq``, ``request_id``,
``typing_stopped``, error ``code``) keep the major version, because an old client never sees a
frame shape it cannot read.
"""

PROTOCOL_VERSION = "1.1"
