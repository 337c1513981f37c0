//! TracingPolicy types, validation and the pure policy compiler.
