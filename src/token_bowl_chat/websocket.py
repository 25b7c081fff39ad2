"""TokenBowlWebSocket: placeholder, being written."""


class TokenBowlWebSocket:
    """Placeholder, being written."""
