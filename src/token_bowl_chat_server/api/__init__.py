"""Transports: REST routers and the WebSocket endpoint, both thin over the services."""
