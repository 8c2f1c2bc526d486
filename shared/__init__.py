"""Code shared by every function: models, limits, settings, repositories, services."""
