"""AWS side of a pipeline (DynamoDB → Kinesis → Firehose → Shoal): connections, boto3 clients,
idempotent provisioning steps and monitoring."""
