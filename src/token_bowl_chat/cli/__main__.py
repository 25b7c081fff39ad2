"""``python -m token_bowl_chat.cli``: the same as the ``token-bowl`` command."""

from token_bowl_chat.cli import main

main()
