"""Flask application, HTTP endpoints and the urbangis command line (nothing imports it)."""
