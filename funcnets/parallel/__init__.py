"""Training beyond one device, on JAX's own runtime (`jax.sharding`, `jax.distributed`)."""
