package io.tidemark.repository.maintenance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.tidemark.core.RetriableException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.function.BooleanSupplier;

/**
 * The lease objects in {@code state/}: small JSON records {@code {owner, startedAt, expiresAt}},
 * written with put-if-absent and never changed. A lease whose {@code expiresAt} has passed is
 * stale: its holder is presumed dead, and others may ignore it or take over.
 */
final class Leases {

    private Leases() {}

    /** A lease as read back. */
    record Lease(String key, String owner, Instant startedAt, Instant expiresAt) {
        boolean liveAt(Instant now) {
            return expiresAt.isAfter(now);
        }
    }

    static byte[] encode(String owner, Instant startedAt, Instant expiresAt) {
        ObjectNode o = Json.mapper().createObjectNode();
        o.put("owner", owner);
        o.put("startedAt", startedAt.toString());
        o.put("expiresAt", expiresAt.toString());
        return o.toString().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * The lease at {@code key}, or empty if it is gone. An unreadable lease counts as live until
     * {@code Instant.MAX}: better to wait for an operator than to sweep under a writer.
     */
    static Optional<Lease> read(ObjectTarget target, String key) {
        return target.get(key).map(bytes -> {
            try {
                JsonNode n = Json.mapper().readTree(bytes);
                return new Lease(
                        key,
                        n.path("owner").asText("?"),
                        Instant.parse(n.path("startedAt").asText()),
                        Instant.parse(n.path("expiresAt").asText()));
            } catch (IOException | RuntimeException e) {
                return new Lease(key, "unreadable lease object", Instant.EPOCH, Instant.MAX);
            }
        });
    }

    /**
     * Polls {@code done} (every 50 ms growing to 1 s) until it is true or {@code wait} of real time
     * has passed. This waits on another process, not on this one.
     *
     * @return whether {@code done} became true
     */
    static boolean await(BooleanSupplier done, Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        long pause = 50;
        while (!done.getAsBoolean()) {
            if (System.nanoTime() - deadline >= 0) {
                return false;
            }
            try {
                Thread.sleep(pause);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RetriableException("interrupted while waiting for a lease", e);
            }
            pause = Math.min(1000, pause * 2);
        }
        return true;
    }
}
