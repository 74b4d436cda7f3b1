"""Real SMPP 3.4 SMSC programs the tests and the benchmark drive the SMPP connector against."""
