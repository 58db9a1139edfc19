package io.tidemark.core.event;

import java.time.Instant;

/** The point in time is captured (exports are frozen); a pre-deploy hook may let the deploy go on. */
public record SnapshotCaptured(String vm, Instant capturedAt) implements EventPayload {}
