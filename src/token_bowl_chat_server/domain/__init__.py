"""Pure rules of the chat: entities, permissions, errors, typing and presence transitions.

Nothing here does I/O or reads the clock; time-dependent rules take ``now``.
"""
