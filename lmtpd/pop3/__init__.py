"""POP3 out: the session state machine (protocol), the listeners (server) and login
throttling (throttle)."""
