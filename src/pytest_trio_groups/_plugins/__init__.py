"""Support for other pytest plugins: one module per plugin, imported only when it is active."""
