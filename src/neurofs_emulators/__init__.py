"""Offline emulators of the remote services neurofs mounts (demo default and test servers)."""
