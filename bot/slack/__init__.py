"""The Slack front: Bolt listeners that acknowledge at once and hand over to SlackFront.

- ``bolt``: the Bolt app (signature check, our middleware, the listeners)
- ``listeners``: ack, then SlackFront; nothing else
- ``front``: run the pipeline in a worker thread, answer in Slack, confirmations, buttons
- ``threads``: a fault's thread (parent with Stop/Extend, replies, final state); SlackNotifier
- ``render``: Block Kit within Slack's limits; ``messages``: what meshbot says
- ``client``: Web API clients with bounded back-off; ``groups``: user group membership
- ``middleware``: request log and retry de-duplication; ``config``: start-up checks
"""
