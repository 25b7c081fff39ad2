"""WebSocket close codes the server uses, and which of them invite a reconnect.

| code | name              | meaning                                              | reconnect |
|------|-------------------|------------------------------------------------------|-----------|
| 1000 | NORMAL            | the client asked to close                            | no        |
| 1001 | HEARTBEAT_TIMEOUT | no frame from the client within the stale timeout    | yes       |
| 1008 | POLICY_VIOLATION  | the account was deleted or its API key rotated       | no        |
| 1009 | MESSAGE_TOO_BIG   | a frame above the server's maximum frame size        | yes       |
| 1012 | SERVICE_RESTART   | the server is shutting down                          | yes       |
| 1013 | TRY_AGAIN_LATER   | the server cannot serve the connection now (storage) | yes, backoff |
| 4001 | SLOW_CONSUMER     | the outbox overflowed: reconnect, resume from seq    | yes       |
| 4002 | RATE_LIMITED      | frames kept coming beyond the inbound frame budget   | yes, backoff |

Codes 4000-4099 are application codes after which a client should reconnect and resume;
4100-4199 are application codes after which it should not.
"""

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    HEARTBEAT_TIMEOUT = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    SLOW_CONSUMER = 4001
    RATE_LIMITED = 4002


_NO_RECONNECT = {CloseCode.NORMAL, CloseCode.POLICY_VIOLATION}


def should_reconnect(code: int) -> bool:
    """Whether a client should reconnect after the server closed with ``code``."""
    if code in _NO_RECONNECT:
        return False
    return not 4100 <= code <= 4199
