"""Use cases of the SMS-Gateway-for-Android surface: ``access`` (who is calling: logins, phones,
registration, JWTs, one-time codes), ``config`` (webhook registrations and settings),
``messages`` (sending, tracking, cancelling, and what phones pull and report) and ``hashing``
(privacy hashing of processed messages). No HTTP here; ``tidings.api.android`` is the HTTP."""
