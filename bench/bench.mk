# Benchmark targets; the top-level Makefile pulls them in with `include bench/bench.mk`.
# make bench                      full run (5 s x 2 rounds, ~13 min on 2 cores)
# make bench BENCH_ARGS=--quick   smoke run (1 s x 1 round, ~2 min)
# make bench BENCH_ARGS="--only transom,raw --endpoints json,plaintext"
# make bench-micro                in-process cost per request, no server (~1 min)
# make bench-tfb                  TechEmpower database tests on the local PostgreSQL (~6 min)
# make bench-cache                the cache battery: Cache.get vs redis-py, @cached vs /json (~1 min;
#                                  BENCH_ARGS=--server adds granian + wrk, ~2 min more)
# make bench-tasks                the tasks battery beside Celery on RabbitMQ and Redis (~4 min)
# make bench-realtime             WebSocket echo, fan-out to 1,000/5,000 clients, memory per connection:
#                                 Transom beside raw ASGI and Starlette + broadcaster (~4 min)
# make bench-admin                admin pages on a 1,000,000-row table beside Django's admin (~3 min)
# make bench-production           what request ids, health probes and metrics cost a request (~1 min)
# make bench-hosts                the example blog on 3 namespace "hosts" x 2 workers behind nginx:
#                                 cross-host checks, rolling restart, throughput table (~3 min, root)
# make bench-rest                 transom.rest list/create beside FastAPI + SQLAlchemy and DRF, wrk (~3 min)

BENCH_PYTHON ?= .venv/bin/python
BENCH_ARGS ?=
BENCH_SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: bench bench-deps bench-micro bench-tfb bench-admin bench-cache bench-tasks bench-production \
	bench-hosts bench-rest bench-soak bench-realtime

bench-deps:
	@command -v wrk >/dev/null 2>&1 || { $(BENCH_SUDO) apt-get update -qq && $(BENCH_SUDO) apt-get install -y -qq wrk; }
	$(BENCH_PYTHON) -m pip install -q -e '.[bench]'

# The tasks bench takes --quick from BENCH_ARGS (its other options are bench/run.py's).
TASKS_ARGS ?= $(filter --quick,$(BENCH_ARGS))

bench: bench-deps
	$(BENCH_PYTHON) bench/run.py $(BENCH_ARGS)
	$(BENCH_PYTHON) bench/tasks.py $(TASKS_ARGS)
	$(BENCH_PYTHON) bench/tasks_enqueue.py

bench-micro: bench-deps
	$(BENCH_PYTHON) bench/micro.py $(BENCH_ARGS)

bench-tfb: bench-deps
	bash bench/tfb/setup_postgres.sh
	$(BENCH_PYTHON) bench/run.py --suite tfb $(BENCH_ARGS)

bench-admin: bench-deps
	$(BENCH_PYTHON) bench/admin/run.py

bench-cache:
	$(BENCH_PYTHON) -m pip install -q -e '.[redis]'
	$(BENCH_PYTHON) bench/cache.py $(BENCH_ARGS)

bench-tasks: bench-deps
	$(BENCH_PYTHON) bench/tasks.py $(BENCH_ARGS)
	$(BENCH_PYTHON) bench/tasks_enqueue.py

bench-production:
	$(BENCH_PYTHON) -m pip install -q -e '.[metrics]'
	$(BENCH_PYTHON) bench/production.py $(BENCH_ARGS)

bench-hosts: bench-deps
	@command -v nginx >/dev/null 2>&1 || { $(BENCH_SUDO) apt-get update -qq && $(BENCH_SUDO) apt-get install -y -qq nginx; }
	$(BENCH_SUDO) $(BENCH_PYTHON) bench/hosts.py $(BENCH_ARGS)

bench-rest: bench-deps
	$(BENCH_PYTHON) bench/rest.py $(BENCH_ARGS)

# make bench-soak                 RSS of the worker over a 10-minute soak per target (~40 min)
# make bench-soak BENCH_ARGS="--duration 60 --interval 10"   a short one
bench-soak: bench-deps
	$(BENCH_PYTHON) bench/soak.py $(BENCH_ARGS)

bench-realtime: bench-deps
	$(BENCH_PYTHON) bench/realtime.py $(BENCH_ARGS)
