"""The device simulator (``swtel sim run``): simulated gNMI, SSH CLI and NETCONF switches on loopback.

It lives beside the collectors because it speaks the same protocols from the device side and shares
their platform tables; it is part of the product (users try the system with it), not a test fake.
"""
