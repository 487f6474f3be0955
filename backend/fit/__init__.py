"""Temporal body-model fitting: pure loss terms, initialisation and the staged optimiser."""
