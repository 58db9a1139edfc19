package io.tidemark.repository;

import io.tidemark.core.target.ObjectTarget;
import io.tidemark.testkit.ForwardingObjectTarget;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/** Counts the objects read from a target, per key prefix ({@code chunks/}, {@code pages/}…). */
final class CountingObjectTarget extends ForwardingObjectTarget {

    private final Map<String, AtomicLong> gets = new ConcurrentHashMap<>();

    CountingObjectTarget(ObjectTarget target) {
        super(target);
    }

    /** Reads of keys under {@code prefix} since the last {@link #reset}. */
    long gets(String prefix) {
        AtomicLong n = gets.get(prefix);
        return n == null ? 0 : n.get();
    }

    void reset() {
        gets.clear();
    }

    @Override
    public Optional<byte[]> get(String key) {
        int slash = key.indexOf('/');
        gets.computeIfAbsent(slash < 0 ? key : key.substring(0, slash + 1), k -> new AtomicLong())
                .incrementAndGet();
        return super.get(key);
    }
}
