"""Test support: real servers from Debian packages (``servers``) and their pytest fixtures."""
