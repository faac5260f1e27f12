"""Infrastructure the three services share: settings, Kafka clients, logging.

No domain code lives here and no service imports another service: they meet only
through Kafka topics and the models in `contracts/`.
"""
