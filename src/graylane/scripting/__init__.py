"""Running users' Lua traffic-routing scripts where a runaway one cannot hurt the controller.

`pool.ProcessScriptRunner` (controller side) sends each script to a worker process (`worker`) that
runs it in Kruise's sandbox (`sandbox`, the only module that loads lupa); `memo` remembers pure results
and backs off failing scripts; `frames` is the pipe protocol. Providers see only the `ScriptRunner`
protocol of graylane.providers.traffic.lua. Importing this package starts nothing.
"""
