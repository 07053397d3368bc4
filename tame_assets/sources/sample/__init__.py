"""The embedded sample archive: a seeded generator of real-format files (``generator``), the synthetic sky
(``sky``) and the loopback HTTP server that serves them (``server``)."""
