"""The fault suite: the hub's three services under a steady stream of school events,
with processes killed, the broker and the database restarted, rebalances, and hostile
messages each followed by a canary; a checker reads the topics and the database back.
Run `python -m faults --seed N --profile short|long` (`make faults`, `make faults-short`).
"""
