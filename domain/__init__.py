"""What an experiment and a schedule are: starting, extending and ending a fault, and moving,
skipping or cancelling a scheduled run. Built on core (the store) and mesh (the cluster); the
verbs above call it, and so does the lifecycle, so every path shares one way to do each act."""
