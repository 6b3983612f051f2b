"""Salesforce's Pub/Sub API: the vendored `pubsub_api.proto` and the gRPC stubs made from it.

`pubsub_api.proto` is a verbatim copy of Salesforce's file from `forcedotcom/pub-sub-api`
(commit 0ba4701), released under CC0 1.0 (see `LICENSE-pubsub-api`). The modules beside it
are generated, kept in git, and never edited by hand: `pubsub_api_pb2.py` (messages),
`pubsub_api_pb2.pyi` (their types) and `pubsub_api_pb2_grpc.py` (the `PubSubStub` client and
the `PubSubServicer` base). Regenerate them with `make stubs`, which runs

    python -m grpc_tools.protoc -I integrations/pubsub --python_out=integrations/pubsub \
        --grpc_python_out=integrations/pubsub --pyi_out=integrations/pubsub \
        integrations/pubsub/pubsub_api.proto

and then makes the grpc module's `import pubsub_api_pb2` relative. The generated code checks
the runtime: grpcio and protobuf must be at least the versions grpcio-tools generated for
(pinned together in `pyproject.toml`). Import them as `integrations.pubsub.pubsub_api_pb2`
and `integrations.pubsub.pubsub_api_pb2_grpc`; this package itself imports nothing.
"""
