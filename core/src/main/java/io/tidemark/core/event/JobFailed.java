package io.tidemark.core.event;

/**
 * A job ended without its outcome. {@code stage} is {@code capture}, {@code export},
 * {@code commit} or {@code replicate}; {@code error} is the message, never a secret.
 */
public record JobFailed(String vm, String stage, String error, boolean retriable) implements EventPayload {}
