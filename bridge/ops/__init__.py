"""Operations: one module each, discovered by `bridge.ops.registry`."""
