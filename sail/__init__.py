"""The `sail` command: the user's entry point to the platform."""
