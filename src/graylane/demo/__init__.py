"""The demo: a local cluster, the controller, a sample app, and releases walked through step by step."""
