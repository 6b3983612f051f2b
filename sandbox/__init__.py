"""Local emulators of Salesforce and WHMCS that speak the real protocols.

`python -m sandbox` serves both; tests call `sandbox.server.start(tmp_path)`. The package is
self-contained: it imports nothing from the rest of the project, and nothing imports it.
"""
