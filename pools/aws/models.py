"""AWS connections and pipelines (placeholder until the AWS provisioning work lands)."""
