"""Urbanism certificates and building permits linked to parcels; built on gis_core and layers."""
