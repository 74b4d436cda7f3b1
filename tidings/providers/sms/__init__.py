"""SMS providers, one module per provider; ``tidings.providers.registry`` names them."""
