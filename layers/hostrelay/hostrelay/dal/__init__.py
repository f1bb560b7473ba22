"""Data access: the only place that talks to DynamoDB, SQS, S3, SSM and IoT."""
