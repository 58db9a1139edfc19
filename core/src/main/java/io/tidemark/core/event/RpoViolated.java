package io.tidemark.core.event;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * A VM's newest restore point at a location is older than its policy allows. Raised once when the
 * violation starts; {@code location} is {@code local} or a replication target's name.
 */
public record RpoViolated(
        String vm, String location, String policy, Duration rpo, Duration age, Optional<Instant> newestCapturedAt)
        implements EventPayload {}
