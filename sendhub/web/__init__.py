"""The hub in a browser: server-rendered pages for the people the hub serves.

Edge adapter, served by the gateway's process (`sendhub serve gateway`): a receiving
setting's inbox and packets, a trust's or LA's oversight, an auditor's pupil view; and
by `sendhub serve admin` (loopback, the operator's credentials): principals, tokens,
webhooks and the settings registry. Pages are HTML and CSS only (no script is needed to
read or act), signed in with the hub's principals (OpenID Connect for people, hub
tokens), and decide who may see what with the gateway's own functions.
"""
