"""Real-time delivery: sockets on this node (hub), fan-out between nodes (broker)."""
