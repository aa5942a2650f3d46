"""djflow's REST API: thin FastAPI handlers over engine's public API."""
