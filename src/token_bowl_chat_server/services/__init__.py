"""Use cases, one module per feature, shared by REST and WebSocket."""
