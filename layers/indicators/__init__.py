"""Spatial indicators for strategy teams: catalogue, units, inputs, runs, exports, report."""
