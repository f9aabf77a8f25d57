"""Layer catalog and OGC protocol logic (framework-free); built on gis_core."""
