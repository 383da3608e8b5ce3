"""Helpers shared by the tests, one module a topic (fixtures stay in tests/conftest.py):

- workers.py: the repository root, child processes' environment, Celery worker processes;
- servers.py: real HTTP requests, free ports, the gunicorn web process, Redis pings;
- firehose.py: DynamoDB change records, Firehose bodies and headers, a delivery through HTTP;
- pools.py: pools with fixed names, landing without HTTP, the guide's Step 4 SQL, views;
- aws.py: moto server processes, AWS connections, call records, pipeline rows;
- roles.py: users with each role;
- metrics.py: reading Prometheus /metrics;
- waiting.py: waiting for a condition;
- markers.py: the markers of the slow suites, applied from the fixtures a test uses.
"""
