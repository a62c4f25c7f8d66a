"""``sparring view``: a local web app over a run store, to explore runs and label verdicts.

Pages (server-side rendered, readable with JavaScript off): every run with its headline
rates; a run's charts as its HTML report draws them; its attempts, paged and filtered in
SQL; one attempt whole, its texts redacted until asked for; two runs compared with the
significance of each change; the review queue, where a person labels attempts unsafe, safe
or refusal; and every judge's agreement with those labels. ``sparring.view.guard`` says how
the server protects itself and the person using it.
"""

from sparring.view.review import labelled_items
from sparring.view.server import DEFAULT_HOST, DEFAULT_PORT, serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "labelled_items", "serve"]
