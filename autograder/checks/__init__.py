"""Hidden checks, one module per chapter; each check builds its own inputs."""
