"""Provisioning and teardown of a pipeline as idempotent steps, one module per AWS resource.

registry.py lists the steps: their order in each phase, their titles, and for each resource the
functions that create it (`ensure`), look it up (`describe`) and remove it (`remove`), all kept
together in the resource's module (stream.py, bucket.py, role.py, firehose.py, destination.py).
base.py holds what they share: Timing, wait_until, StepSkipped and the tag helpers.

Every `ensure` first looks up what exists, so a step can be re-run after any failure without
duplicating anything: a resource Shoal created is recognised by the flag recorded right after its
creation or, if the process died before that, by the `shoal:pipeline` tag it carries. A resource
with the same name that is neither is someone else's: the step stops and says so, rather than
adopting (and one day deleting) it. Teardown removes only what Shoal created.

`ensure` and `remove` take the pipeline, the boto3 clients (clients.Aws) and the waits (Timing),
return a one-line account of what they found or did, and raise errors.AwsError (or a botocore
error) when they cannot go on, or StepSkipped when there is nothing to do. `describe` returns what
AWS says of the resource, or None when it does not exist.
"""
