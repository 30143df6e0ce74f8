"""network capability (see ARCHITECTURE.md)."""

__all__: list[str] = []
