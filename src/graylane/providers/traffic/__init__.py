"""Traffic providers: Services, Ingress (Lua), Gateway API; see base.py for the contract."""
