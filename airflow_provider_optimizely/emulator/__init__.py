"""A local emulator of Optimizely DCP, ODP, Profile Store and Optimove Data Connections
(docs/api-contract.md §8), taking the strictest reading of each rule by default
(docs/emulator-fidelity.md).

Run it with ``optimizely-emulator`` (``cli.py``), from code with ``server.run_emulator()``, or in tests
through the pytest plugin (``pytest_plugin.py``). The app is ``app.create_app(settings)``; each API has its
own router module (``dcp_auth.py`` holds DCP's credentials and OAuth token endpoint), ``traffic.py`` puts
faults (``faults.py``), rate limits (``ratelimit.py``) and request counting in front of them,
``s3_gateway.py`` puts S3's SigV4 checks in front of moto's S3, and ``s3_import.py`` turns uploads into DCP
Upload History.

Nothing here imports the client side of the package, and nothing is imported eagerly: the pytest plugin
loads this package in every test session of a user who installed it.
"""
