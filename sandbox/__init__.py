"""Local emulators of Salesforce (REST and the Pub/Sub API) and WHMCS that speak the real
protocols.

`python -m sandbox` serves them; tests call `sandbox.server.start(tmp_path)`. The package is
self-contained: of the project it imports only `settings` and the generated Pub/Sub API stubs
in `integrations.pubsub` (see README.md), and the product never imports it.
"""
