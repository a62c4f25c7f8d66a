"""The built-in guards, one module each; ``sparring.defenses.registry`` imports them all on
its first lookup, so adding a guard is adding a file here."""
