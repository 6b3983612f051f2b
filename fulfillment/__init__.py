"""Fulfillment's rules, with no Celery and no Flask: what each step does (`steps.py`), what
it already did (`ledger.py`), crash recovery and where a run starts (`recovery.py`), how
often to retry (`retries.py`), what a failure looks like (`failures.py`), asking for
fulfillment (`requests.py`: the use case HTTP, the CLI and the coming listener share), and
the collaborators the steps are given (`ports.py`, with in-memory versions in `fakes.py`).

Rule of this package: it imports `settings`, `notifier` and `integrations`, never `tasks`
(the Celery edge) or `app` (the web). Queueing work is a port (`ports.Dispatcher`) that the
Celery edge implements.
"""
