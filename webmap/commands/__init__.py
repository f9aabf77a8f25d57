"""Command modules of the ``urbangis`` CLI; each exposes ``group`` (a click command or group)."""
