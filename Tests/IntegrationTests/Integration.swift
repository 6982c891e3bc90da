import Testing

/// Every integration suite runs inside this one, one test at a time: they start real servers
/// and the built binary, and on a two-core machine they measure behaviour (poll rates, backoff,
/// downtime durations) that should not depend on what the neighbouring test is doing.
@Suite(.serialized) enum Integration {}
