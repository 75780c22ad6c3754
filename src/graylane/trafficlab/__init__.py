"""Real HTTP traffic to kwok pods: a network namespace, a fake app that answers as every pod, gateways.

Pod IPs (the local cluster's 10.123.0.0/17) are made local inside a network namespace that this code
creates itself, and everything that sends or answers traffic runs in it; nothing is ever sent to those
addresses from outside it. See netns.py, app.py, gateways.py and lab.py.
"""
