"""Registers of certificates and permits: readers and the import pipeline."""
