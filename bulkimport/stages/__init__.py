"""The work, as plain functions: read -> validate -> stage -> review -> commit.

Each takes a lake connection and a job, and runs without a broker.
"""
