"""One module per framework, each exposing the same three apps under the same names.

* ``app`` - ``GET /plaintext``, ``GET /json`` and ``POST /typed/{item_id}``
* ``routes_1000`` - ``GET /r{i}/{id}`` for i in 0..999 (the benchmark hits the last one)
* ``routes_10`` - the same app with ten routes

``bench/run.py`` serves them as ``bench.apps.<module>:<name>``; ``tests/test_bench_apps.py``
checks that every one of them answers with the same bytes.
"""
