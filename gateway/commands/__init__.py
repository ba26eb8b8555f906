"""Sub-commands of `sendgw`; every module here provides `register(subparsers)`."""
