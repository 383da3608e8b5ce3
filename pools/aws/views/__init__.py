"""Console pages of AWS connections and pipelines, one module per topic.

connections.py (AWS connections), wizard.py (the "Connect DynamoDB" wizard), pipeline.py (a
pipeline's page and actions) and snapshot.py (its "Backfill existing items" card).
"""
