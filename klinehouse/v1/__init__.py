"""Generated gRPC stubs of protos/klinehouse/v1 (`make protos`); do not edit."""
