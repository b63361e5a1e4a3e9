"""Emulators that speak the real wire protocols of the stage and laser controllers."""
