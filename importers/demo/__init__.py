"""The demo municipality: a synthetic, deterministic Cluj-Napoca.

No open Romanian cadastral or zoning data exists, so ``urbangis demo load`` generates a
plausible one inside the real UAT outline, with the real street names and SIRUTA codes:
parcels with cadastral numbers, buildings, addresses, a PUG with UTR rules, two PUZs,
restrictions; ``urbangis demo files`` writes sample CGXML files and a register of acts
for the same city. Everything but the outline, the street names and the SIRUTA codes is
invented (see ``OSM-ATTRIBUTION.md`` for the OpenStreetMap data).

Modules by role: ``sources`` (packaged reference data), ``city`` (outline, intravilan,
districts, streets, blocks), ``lots`` (parcellation), ``streets`` (naming), ``plans``
(PUG/PUZ zones, restrictions), ``parcels`` (identifiers, addresses), ``buildings``,
``generate`` (the pure function of parameters), ``records`` (rows per table),
``load`` (the database load), ``cgxml``/``register``/``samples`` (the sample files).
"""

# Parameters of the default demo (what ``make demo`` loads and data/demo cites) and the
# range the generator accepts. Here, not in ``generate``, so the CLI can show them
# without importing the generator's numeric stack.
DEFAULT_PARCELS = 25_000
DEFAULT_SEED = 1
MIN_PARCELS = 100
MAX_PARCELS = 2_000_000
