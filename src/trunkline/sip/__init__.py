"""The SIP edge: Kamailio configured, supervised and kept in step by trunkline."""
