"""The ground floor: values, errors, durations, the clock, settings, policy and the store.

Everything above (mesh, domain, handlers, bot) may import from here; nothing here imports from
above, so the store and the policy can be used and tested without a cluster or a transport.
"""
