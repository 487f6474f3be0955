"""Rotations, cameras and frame conventions."""
