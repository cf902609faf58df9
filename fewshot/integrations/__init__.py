"""Plug-ins for engines users already run; each imports its engine only inside its own module.

- ``fewshot.integrations.ray``: Ray Data batch inference (``pip install "fewshot[ray]"``).
"""
