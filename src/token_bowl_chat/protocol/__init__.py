"""The Token Bowl Chat wire protocol, shared by the server and the client.

This subpackage imports only the standard library and pydantic, so the server can depend on
it without pulling in the rest of the client.
"""

from token_bowl_chat.protocol.version import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
