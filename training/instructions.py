"""The instruction table: what a query is embedded with when nobody says otherwise.

Three kinds of default, one place. The evaluation's follow mteb (tests/test_eval_mteb.py checks they
still match it): a dataset's own prompt where mteb has one, else its task type's.
"""

# training data, by the kind of source it was read from (KIND:PATH on the command line)
SOURCE_INSTRUCTIONS = {
    "jsonl": "Retrieve semantically similar text.",
    "beir": "Given a query, retrieve documents that answer it.",
    "sts": "Retrieve semantically similar text.",
    "qa": "Given a question, retrieve the passage that answers it.",
    "paraphrase": "Retrieve texts that are paraphrases of the given text.",
}

# evaluation, by task type (mteb's abstask_prompt)
TASK_INSTRUCTIONS = {
    "retrieval": "Retrieve text based on user query.",
    "sts": "Retrieve semantically similar text.",
    "pairs": "Retrieve text that are semantically similar to the given text.",
}

# evaluation, by dataset (mteb's TaskMetadata.prompt for the datasets we have)
DATASET_INSTRUCTIONS = {
    "scifact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "stsbenchmark": "Retrieve semantically similar text.",
}
