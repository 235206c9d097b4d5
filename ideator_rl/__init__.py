"""Training the ideator (the model that writes research ideas) with execution reward.

Arrives with the ideator-RL issue; it consumes rewards that `agent.executor` records.
"""
